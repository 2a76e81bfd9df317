// How the Fedify interop peer (peer.mjs) records an activity that reached one of its
// inboxes: the JSON as POSTed, Fedify's reading of the embedded object, and its
// FEP-0837 reading of a proposal or agreement (market.mjs).

import { readMarket } from "./market.mjs";

const now = () => new Date().toISOString();
const href = (u) => (u == null ? null : u.href ?? String(u));

/** What the peer records of an activity that passed Fedify's verification. */
export async function describe(ctx, activity) {
  const raw = ctx.data?.rawBody;
  let parsed = null;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = null;
  }
  let object = null;
  let attachments = null;
  try {
    // Only what is embedded: never fetch while recording.
    const o = activity.objectId == null ? null : await activity.getObject({
      documentLoader: noFetch,
    });
    if (o != null) object = await o.toJsonLd({ format: "compact" });
    if (o != null && typeof o.getAttachments === "function") {
      attachments = [];
      for await (const a of o.getAttachments({ documentLoader: noFetch })) {
        attachments.push(readAttachment(a));
      }
    }
  } catch {
    object = null;
  }
  return {
    received_at: now(),
    inbox: ctx.recipient == null ? "shared" : ctx.recipient,
    type: activity.constructor.name,
    id: href(activity.id),
    actor: href(activity.actorId),
    object_id: href(activity.objectId),
    object_type: typeOf(parsed?.object),
    // The JSON exactly as it was POSTed, and Fedify's reading of the object.
    raw: parsed ?? raw ?? null,
    object,
    // Fedify's reading of the object's attachments (Document, Image, ...).
    attachments,
    market: await readMarket(parsed),
    request: ctx.data?.requestInfo ?? null,
  };
}

async function noFetch(url) {
  throw new Error(`not fetching ${url} while recording`);
}

function readAttachment(a) {
  const url = a.url instanceof URL ? a.url : a.url?.href;
  return {
    type: a.constructor.name,
    mediaType: a.mediaType ?? null,
    url: href(url),
    name: a.name == null ? null : String(a.name),
    width: a.width ?? null,
    height: a.height ?? null,
  };
}

function typeOf(object) {
  if (object == null || typeof object !== "object") return null;
  return object.type ?? object["@type"] ?? null;
}
