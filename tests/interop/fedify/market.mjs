// FEP-0837 (federated marketplace) for the Fedify interop peer (peer.mjs): Fedify's
// own reading of proposals and agreements through its Proposal, Intent, Measure,
// Agreement and Commitment classes, and the control endpoints that make the peer
// publish a Proposal or send an Offer(Agreement) built with those classes:
//
//   POST /control/propose   {"purpose", "name", "content", "publishes": INTENT,
//                            "reciprocal": INTENT?}            -> Create(Proposal) to followers,
//                           built with Fedify's Proposal/Intent/Measure classes, where
//                           INTENT = {"action", "resourceConformsTo", "unit", "amount"}
//   POST /control/offer     {"actor": URL, "proposal": URL, "unit", "amount",
//                            "reciprocal": {"unit", "amount"}?}  -> Offer(Agreement) to that
//                           actor, built with Fedify's Agreement/Commitment/Measure classes
//
// /control/received holds, for a Proposal (Create/Update), an Offer(Agreement) or an
// Accept with a result, Fedify's own reading of it as "market" (readMarket).

import { randomUUID } from "node:crypto";

import {
  Agreement,
  Commitment,
  Create,
  Intent,
  Measure,
  Offer,
  Proposal,
  PUBLIC_COLLECTION,
} from "@fedify/vocab";
import { Temporal } from "@js-temporal/polyfill";

const href = (u) => (u == null ? null : u.href ?? String(u));

const noFetch = async (url) => {
  throw new Error(`not fetching ${url} while reading`);
};

function measure(m) {
  if (m == null) return null;
  return { unit: m.unit, amount: m.numericalValue == null ? null : String(m.numericalValue) };
}

function intent(i) {
  if (i == null) return null;
  return {
    id: href(i.id),
    action: i.action,
    resourceConformsTo: href(i.resourceConformsTo),
    resourceQuantity: measure(i.resourceQuantity),
    availableQuantity: measure(i.availableQuantity),
    minimumQuantity: measure(i.minimumQuantity),
  };
}

function commitment(c) {
  if (c == null) return null;
  return { id: href(c.id), satisfies: href(c.satisfies), resourceQuantity: measure(c.resourceQuantity) };
}

function hasType(value, name) {
  const types = value?.type ?? value?.["@type"];
  return Array.isArray(types) ? types.includes(name) : types === name;
}

/** Fedify's reading, through its own Proposal or Agreement class, of the proposal
 *  (Create/Update), the agreement offered (Offer) or the agreement made (Accept's
 *  result) in a POSTed activity; {error} when Fedify cannot read it. */
export async function readMarket(parsed) {
  if (parsed == null || typeof parsed !== "object") return null;
  const options = { documentLoader: noFetch };
  const inner = hasType(parsed, "Accept") ? parsed.result : parsed.object;
  if (inner == null || typeof inner !== "object") return null;
  const doc = { "@context": parsed["@context"], ...inner };
  try {
    if (hasType(inner, "Proposal")) {
      const p = await Proposal.fromJsonLd(doc, options);
      return {
        class: "Proposal",
        id: href(p.id),
        purpose: p.purpose,
        unitBased: p.unitBased,
        name: p.name == null ? null : String(p.name),
        publishes: intent(p.publishes),
        reciprocal: intent(p.reciprocal),
      };
    }
    if (hasType(inner, "Agreement")) {
      const a = await Agreement.fromJsonLd(doc, options);
      return {
        class: "Agreement",
        id: href(a.id),
        stipulates: commitment(a.stipulates),
        stipulatesReciprocal: commitment(a.stipulatesReciprocal),
      };
    }
  } catch (error) {
    return { error: String(error?.stack ?? error) };
  }
  return null;
}

function buildIntent(id, spec) {
  return new Intent({
    id,
    action: spec.action,
    resourceConformsTo: new URL(spec.resourceConformsTo),
    resourceQuantity: new Measure({
      unit: spec.unit,
      ...(spec.amount == null ? {} : { numericalValue: String(spec.amount) }),
    }),
  });
}

/** The marketplace control endpoints (see peer.mjs); undefined for any other key. */
export async function marketControl(key, ctx, body, env) {
  switch (key) {
    case "POST /control/offer": {
      const actor = await env.lookUpActor(ctx, env.requireUrl(body, "actor"));
      const proposal = env.requireUrl(body, "proposal");
      const commitment = (suffix, spec) =>
        new Commitment({
          satisfies: new URL(`${proposal.href}#${suffix}`),
          resourceQuantity: new Measure({ unit: spec.unit, numericalValue: String(spec.amount) }),
        });
      const offer = new Offer({
        id: new URL(`${env.origin}/offers/${randomUUID()}`),
        actor: ctx.getActorUri(env.identifier),
        to: actor.id,
        object: new Agreement({
          stipulates: commitment("primary", body),
          ...(body.reciprocal == null
            ? {}
            : { stipulatesReciprocal: commitment("reciprocal", body.reciprocal) }),
        }),
      });
      await env.send(ctx, actor, offer, body.immediate);
      return { offer_id: offer.id.href, json: await offer.toJsonLd({ format: "compact" }) };
    }
    case "POST /control/propose": {
      if (typeof body?.name !== "string" || body?.publishes == null) {
        throw new env.HttpError(400, `"name" and "publishes" are required`);
      }
      const id = randomUUID();
      const proposalId = new URL(`${env.origin}/users/${env.identifier}/proposals/${id}`);
      const published = Temporal.Now.instant();
      const proposal = new Proposal({
        id: proposalId,
        attribution: ctx.getActorUri(env.identifier),
        name: body.name,
        content: body.content ?? `<p>${body.name}</p>`,
        published,
        url: proposalId,
        to: PUBLIC_COLLECTION,
        cc: ctx.getFollowersUri(env.identifier),
        purpose: body.purpose ?? "offer",
        publishes: buildIntent(new URL(`${proposalId.href}#primary`), body.publishes),
        ...(body.reciprocal == null
          ? {}
          : { reciprocal: buildIntent(new URL(`${proposalId.href}#reciprocal`), body.reciprocal) }),
      });
      env.posts.set(id, proposal);
      const create = new Create({
        id: new URL(`${proposalId.href}/activity`),
        actor: ctx.getActorUri(env.identifier),
        object: proposal,
        to: PUBLIC_COLLECTION,
        cc: ctx.getFollowersUri(env.identifier),
        published,
      });
      await env.send(ctx, "followers", create, body.immediate, { preferSharedInbox: true });
      return {
        proposal_id: proposalId.href,
        create_id: create.id.href,
        followers: env.followers.size,
        json: await proposal.toJsonLd({ format: "compact" }),
      };
    }
    default:
      return undefined;
  }
}
