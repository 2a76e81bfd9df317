// A small Fedify ActivityPub server that coopfed's interop tests run beside
// our node on loopback.  It is an independent implementation: everything
// ActivityPub here (WebFinger, actor documents, HTTP Signatures, inbox
// verification, delivery) is done by Fedify itself.
//
// One actor, `peer` (a Person with an RSA key made at start), kept in memory.
// It auto-accepts Follows, and records every activity that reaches an inbox
// listener, i.e. after Fedify has verified it.  Tests drive it through JSON
// endpoints under /control/ on the same port:
//
//   GET  /control/health
//   POST /control/follow    {"actor": "<actor URL>"}       -> Follow
//   POST /control/unfollow  {"actor": "<actor URL>"}       -> Undo(Follow)
//   POST /control/post      {"content": "<p>hi</p>", "mention": URL?, "in_reply_to": URL?}
//                           -> Create(Note) to followers (with "mention": one Mention tag,
//                           compacted to one object; "in_reply_to": the note's inReplyTo)
//   POST /control/propose, /control/offer: FEP-0837, see market.mjs
//   POST /control/question, /control/question-update, GET /control/votes: polls, see poll.mjs
//   GET  /control/inbox-answers  every POST to an inbox and the status it answered
//   GET  /control/received  activities received, oldest first (with "market": Fedify's
//                           FEP-0837 reading of a proposal or agreement, see market.mjs)
//   GET  /control/followers
//   GET  /control/following (with each follow's state: pending/accepted/rejected)
//   GET  /control/errors    failed outgoing deliveries (to debug a test)
//
// follow/unfollow/post take an optional "immediate": true to deliver before
// answering (a failed delivery then answers 502 with Fedify's error);
// otherwise delivery goes through Fedify's in-memory queue with retries.
//
// Usage: node peer.mjs [--port N] [--host 127.0.0.1] [--first-knock rfc9421|draft-cavage]
//                      [--unsigned-fetch] [--ed25519]
// The port also comes from FEDIFY_PEER_PORT or PORT; 0 picks a free port.
// The origin is http://HOST:PORT.  Prints "READY <port>" on stdout once it
// serves.  FEDIFY_PEER_LOG=debug|info|warning sends Fedify's logs to stderr.
//
// Needs Node.js >= 22 (Fedify 2.x); tests/interop/fedify_peer.py supplies it.

import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import http from "node:http";
import process from "node:process";
import { parseArgs } from "node:util";

import {
  createExponentialBackoffPolicy,
  createFederation,
  generateCryptoKeyPair,
  InProcessMessageQueue,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Create,
  Endpoints,
  Follow,
  isActor,
  Mention,
  Note,
  Person,
  Proposal,
  PUBLIC_COLLECTION,
  Reject,
  Undo,
} from "@fedify/vocab";
import { Temporal } from "@js-temporal/polyfill";
import { configure, getTextFormatter } from "@logtape/logtape";

import { marketControl } from "./market.mjs";
import { pollControl, recordVote } from "./poll.mjs";
import { describe } from "./record.mjs";

const IDENTIFIER = "peer";

// ---------------------------------------------------------------- options

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    "first-knock": { type: "string" },
    "unsigned-fetch": { type: "boolean", default: false },
    ed25519: { type: "boolean", default: false },
  },
});
const portArg = args.port ?? process.env.FEDIFY_PEER_PORT ?? process.env.PORT ?? "0";
const requestedPort = Number.parseInt(portArg, 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`peer.mjs: bad port ${JSON.stringify(portArg)}`);
  process.exit(2);
}
const host = args.host;
const firstKnock = {
  undefined: undefined,
  rfc9421: "rfc9421",
  "draft-cavage": "draft-cavage-http-signatures-12",
  "draft-cavage-http-signatures-12": "draft-cavage-http-signatures-12",
}[args["first-knock"]];
if (args["first-knock"] !== undefined && firstKnock === undefined) {
  console.error(`peer.mjs: --first-knock must be rfc9421 or draft-cavage`);
  process.exit(2);
}
// Sign our own GETs (actor lookups, and key fetches while verifying), as
// Mastodon does; --unsigned-fetch turns that off.
const signedFetch = !args["unsigned-fetch"];

const logLevel = process.env.FEDIFY_PEER_LOG;
if (logLevel) {
  const format = getTextFormatter();
  await configure({
    contextLocalStorage: new AsyncLocalStorage(),
    sinks: { stderr: (record) => process.stderr.write(format(record)) },
    loggers: [
      { category: "fedify", sinks: ["stderr"], lowestLevel: logLevel },
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
    ],
  });
}

// ---------------------------------------------------------------- state

const keyPairs = [await generateCryptoKeyPair("RSASSA-PKCS1-v1_5")];
if (args.ed25519) keyPairs.push(await generateCryptoKeyPair("Ed25519"));

/** Activities that passed Fedify's verification, oldest first. */
const received = [];
/** follower actor id -> {actor, inbox, shared_inbox, follow_id, since} */
const followers = new Map();
/** followed actor id -> {actor, follow_id, state, since, follow (the Follow)} */
const following = new Map();
/** post id -> Note */
const posts = new Map();
/** failed outgoing deliveries */
const deliveryErrors = [];
/** every POST to an inbox: {at, path, status, body (the answer's first 500 bytes)} */
const inboxAnswers = [];

const now = () => new Date().toISOString();
const href = (u) => (u == null ? null : u.href ?? String(u));

// ---------------------------------------------------------------- federation

let origin; // set once the server listens (the port may be 0 until then)
let federation;

function buildFederation() {
  const fed = createFederation({
    kv: new MemoryKvStore(),
    // Inbox activities are handled inline (so a listener sees the request's
    // raw body); deliveries go through an in-memory queue with quick retries.
    queue: { outbox: new InProcessMessageQueue(), fanout: new InProcessMessageQueue() },
    origin,
    allowPrivateAddress: true, // loopback only: never outside tests
    ...(firstKnock ? { firstKnock } : {}),
    circuitBreaker: false,
    outboxRetryPolicy: createExponentialBackoffPolicy({
      initialDelay: { milliseconds: 500 },
      maxDelay: { seconds: 5 },
      maxAttempts: 6,
    }),
    onOutboxError: (error, activity) => {
      deliveryErrors.push({
        at: now(),
        error: String(error?.stack ?? error),
        activity_id: href(activity?.id),
        activity_type: activity?.constructor?.typeId?.href ?? activity?.constructor?.name ?? null,
      });
    },
  });

  fed
    .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
      if (identifier !== IDENTIFIER) return null;
      const keys = await ctx.getActorKeyPairs(identifier);
      return new Person({
        id: ctx.getActorUri(identifier),
        preferredUsername: identifier,
        name: "Fedify interop peer",
        summary: "An independent ActivityPub implementation (Fedify) for coopfed's tests.",
        url: ctx.getActorUri(identifier),
        inbox: ctx.getInboxUri(identifier),
        outbox: ctx.getOutboxUri(identifier),
        followers: ctx.getFollowersUri(identifier),
        following: ctx.getFollowingUri(identifier),
        endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
        manuallyApprovesFollowers: false,
        discoverable: true,
        publicKey: keys[0].cryptographicKey,
        assertionMethods: keys.map((k) => k.multikey),
      });
    })
    .setKeyPairsDispatcher(async (_ctx, identifier) =>
      identifier === IDENTIFIER ? keyPairs : []
    );

  fed.setOutboxDispatcher("/users/{identifier}/outbox", async (ctx, identifier) => {
    if (identifier !== IDENTIFIER) return null;
    const items = [...posts.values()].reverse().map(
      (note) =>
        new Create({
          id: new URL(`${note.id.href}/activity`),
          actor: ctx.getActorUri(IDENTIFIER),
          object: note,
          tos: note.toIds,
          ccs: note.ccIds,
          published: note.published,
        })
    );
    return { items };
  });

  fed.setFollowersDispatcher("/users/{identifier}/followers", async (_ctx, identifier) => {
    if (identifier !== IDENTIFIER) return null;
    const items = [...followers.values()].map((f) => ({
      id: new URL(f.actor),
      inboxId: f.inbox ? new URL(f.inbox) : null,
      endpoints: f.shared_inbox ? { sharedInbox: new URL(f.shared_inbox) } : null,
    }));
    return { items };
  });

  fed.setFollowingDispatcher("/users/{identifier}/following", async (_ctx, identifier) => {
    if (identifier !== IDENTIFIER) return null;
    const items = [...following.values()]
      .filter((f) => f.state === "accepted")
      .map((f) => new URL(f.actor));
    return { items };
  });

  fed.setObjectDispatcher(Note, "/users/{identifier}/posts/{id}", (_ctx, values) => {
    if (values.identifier !== IDENTIFIER) return null;
    const post = posts.get(values.id);
    return post instanceof Note ? post : null;
  });

  fed.setObjectDispatcher(Proposal, "/users/{identifier}/proposals/{id}", (_ctx, values) => {
    if (values.identifier !== IDENTIFIER) return null;
    const post = posts.get(values.id);
    return post instanceof Proposal ? post : null;
  });

  fed
    .setInboxListeners("/users/{identifier}/inbox", "/inbox")
    .setSharedKeyDispatcher((_ctx) => (signedFetch ? { identifier: IDENTIFIER } : null))
    .on(Follow, async (ctx, follow) => {
      received.push(await describe(ctx, follow));
      const target = ctx.parseUri(follow.objectId);
      if (follow.id == null || follow.actorId == null) return;
      if (target?.type !== "actor" || target.identifier !== IDENTIFIER) return;
      const follower = await follow.getActor({ documentLoader: await loaderFor(ctx) });
      if (follower == null || follower.inboxId == null) return;
      followers.set(follower.id.href, {
        actor: follower.id.href,
        inbox: follower.inboxId.href,
        shared_inbox: href(follower.endpoints?.sharedInbox),
        follow_id: follow.id.href,
        since: now(),
      });
      await ctx.sendActivity(
        { identifier: IDENTIFIER },
        follower,
        new Accept({
          id: new URL(`${ctx.origin}/accepts/${randomUUID()}`),
          actor: ctx.getActorUri(IDENTIFIER),
          object: follow,
        })
      );
    })
    .on(Accept, async (ctx, accept) => {
      received.push(await describe(ctx, accept));
      settleFollow(accept, "accepted");
    })
    .on(Reject, async (ctx, reject) => {
      received.push(await describe(ctx, reject));
      settleFollow(reject, "rejected");
    })
    .on(Undo, async (ctx, undo) => {
      received.push(await describe(ctx, undo));
      const actor = href(undo.actorId);
      const f = followers.get(actor);
      if (f == null) return;
      // Undo(Follow): the object is the Follow, embedded or by id.
      if (href(undo.objectId) === f.follow_id) {
        followers.delete(actor);
        return;
      }
      let object = null;
      try {
        object = await undo.getObject({ documentLoader: await loaderFor(ctx) });
      } catch {
        // unreachable object: not an Undo of a Follow we know
      }
      if (object instanceof Follow && href(object.actorId) === actor) {
        const target = ctx.parseUri(object.objectId);
        if (target?.type === "actor" && target.identifier === IDENTIFIER) followers.delete(actor);
      }
    })
    // Create, Update, Delete, Announce, Like and every other type.
    .on(Activity, async (ctx, activity) => {
      const record = await describe(ctx, activity);
      received.push(record);
      recordVote(activity, record.raw);
    })
    .onError((_ctx, error) => {
      console.error(`peer.mjs: inbox listener error: ${error?.stack ?? error}`);
    });

  return fed;
}

function loaderFor(ctx) {
  return signedFetch ? ctx.getDocumentLoader({ identifier: IDENTIFIER }) : ctx.documentLoader;
}

function settleFollow(activity, state) {
  const objectId = href(activity.objectId);
  const actor = href(activity.actorId);
  let entry = [...following.values()].find((f) => f.follow_id === objectId);
  // Some servers answer with a fresh copy of the Follow, or without its id:
  // fall back to the pending follow of the answering actor.
  if (entry == null) {
    const f = following.get(actor);
    if (f != null && f.state === "pending") entry = f;
  }
  if (entry == null || entry.actor !== actor) return;
  entry.state = state;
  entry.settled_at = now();
}

// ---------------------------------------------------------------- control

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function controlContext() {
  return federation.createContext(new URL(origin), { rawBody: null, requestInfo: null });
}

async function send(ctx, recipients, activity, immediate, extra = {}) {
  try {
    await ctx.sendActivity({ identifier: IDENTIFIER }, recipients, activity, {
      immediate: !!immediate,
      ...extra,
    });
  } catch (error) {
    throw new HttpError(502, `delivery failed: ${error?.stack ?? error}`);
  }
}

function requireUrl(body, key) {
  const value = body?.[key];
  try {
    return new URL(value);
  } catch {
    throw new HttpError(400, `"${key}" must be an absolute URL`);
  }
}

async function lookUpActor(ctx, url) {
  let actor;
  try {
    actor = await ctx.lookupObject(url, { documentLoader: await loaderFor(ctx) });
  } catch (error) {
    throw new HttpError(502, `cannot fetch ${url.href}: ${error?.stack ?? error}`);
  }
  if (!isActor(actor)) throw new HttpError(502, `${url.href} is not an actor`);
  if (actor.inboxId == null) throw new HttpError(502, `${url.href} has no inbox`);
  return actor;
}

async function control(method, path, body) {
  const ctx = controlContext();
  const key = `${method} ${path}`;
  switch (key) {
    case "GET /control/health":
      return { ok: true, origin, actor: ctx.getActorUri(IDENTIFIER).href, signed_fetch: signedFetch };
    case "GET /control/received":
      return received;
    case "GET /control/followers":
      return [...followers.values()];
    case "GET /control/following":
      return [...following.values()].map(({ follow, ...f }) => ({
        ...f,
        accepted: f.state === "accepted",
      }));
    case "GET /control/errors":
      return deliveryErrors;
    case "GET /control/inbox-answers":
      return inboxAnswers;
    case "POST /control/follow": {
      const actor = await lookUpActor(ctx, requireUrl(body, "actor"));
      const follow = new Follow({
        id: new URL(`${origin}/follows/${randomUUID()}`),
        actor: ctx.getActorUri(IDENTIFIER),
        object: actor.id,
      });
      const entry = {
        actor: actor.id.href,
        follow_id: follow.id.href,
        state: "pending",
        since: now(),
        follow,
      };
      following.set(actor.id.href, entry);
      await send(ctx, actor, follow, body.immediate);
      return { actor: entry.actor, follow_id: entry.follow_id, state: entry.state };
    }
    case "POST /control/unfollow": {
      const url = requireUrl(body, "actor");
      const entry = following.get(url.href);
      if (entry == null) throw new HttpError(404, `not following ${url.href}`);
      const actor = await lookUpActor(ctx, url);
      const undo = new Undo({
        id: new URL(`${origin}/undos/${randomUUID()}`),
        actor: ctx.getActorUri(IDENTIFIER),
        object: entry.follow,
      });
      following.delete(url.href);
      await send(ctx, actor, undo, body.immediate);
      return { actor: entry.actor, undo_id: undo.id.href };
    }
    case "POST /control/post": {
      const content = body?.content;
      if (typeof content !== "string" || content === "") {
        throw new HttpError(400, `"content" must be a non-empty string`);
      }
      const id = randomUUID();
      const noteId = ctx.getObjectUri(Note, { identifier: IDENTIFIER, id });
      const published = Temporal.Now.instant();
      const mention = body.mention == null ? null : requireUrl(body, "mention");
      const replyTarget = body.in_reply_to == null ? null : requireUrl(body, "in_reply_to");
      const note = new Note({
        id: noteId,
        ...(replyTarget == null ? {} : { replyTarget }),
        attribution: ctx.getActorUri(IDENTIFIER),
        content,
        published,
        url: noteId,
        to: PUBLIC_COLLECTION,
        ...(mention == null
          ? { cc: ctx.getFollowersUri(IDENTIFIER) }
          : {
              ccs: [ctx.getFollowersUri(IDENTIFIER), mention],
              // One tag: Fedify compacts it to a single object, not an array.
              tags: [new Mention({ href: mention, name: body.mention_name ?? null })],
            }),
      });
      posts.set(id, note);
      const create = new Create({
        id: new URL(`${noteId.href}/activity`),
        actor: ctx.getActorUri(IDENTIFIER),
        object: note,
        to: PUBLIC_COLLECTION,
        ccs: note.ccIds,
        published,
      });
      await send(ctx, "followers", create, body.immediate, { preferSharedInbox: true });
      return {
        note_id: noteId.href,
        create_id: create.id.href,
        followers: followers.size,
        json: await create.toJsonLd({ format: "compact" }),
      };
    }
    default: {
      const env = { origin, identifier: IDENTIFIER, posts, followers, lookUpActor, requireUrl };
      const result =
        (await marketControl(key, ctx, body, { ...env, send, HttpError })) ??
        (await pollControl(key, ctx, body, { ...env, send, HttpError }));
      if (result !== undefined) return result;
      throw new HttpError(404, `no control endpoint ${key}`);
    }
  }
}

// ---------------------------------------------------------------- http

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJson(res, status, value) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

async function handle(req, res) {
  const url = new URL(req.url, origin);
  const body = req.method === "GET" || req.method === "HEAD" ? null : await readBody(req);

  if (url.pathname.startsWith("/control/")) {
    let parsed = {};
    if (body != null && body.length > 0) {
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        return sendJson(res, 400, { error: "body is not JSON" });
      }
    }
    try {
      return sendJson(res, 200, await control(req.method, url.pathname, parsed ?? {}));
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      return sendJson(res, status, { error: String(error?.message ?? error) });
    }
  }

  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const request = new Request(url, { method: req.method, headers, body });
  const requestInfo = {
    method: req.method,
    path: url.pathname,
    headers: Object.fromEntries(headers.entries()),
  };
  const response = await federation.fetch(request, {
    contextData: { rawBody: body == null ? null : body.toString("utf8"), requestInfo },
    onNotFound: () => new Response("Not Found", { status: 404 }),
    onNotAcceptable: () =>
      new Response("Not Acceptable", { status: 406, headers: { vary: "Accept" } }),
  });
  const out = Buffer.from(await response.arrayBuffer());
  if (req.method === "POST" && url.pathname.endsWith("/inbox")) {
    inboxAnswers.push({
      at: now(),
      path: url.pathname,
      status: response.status,
      body: out.subarray(0, 500).toString("utf8"),
    });
  }
  const outHeaders = {};
  for (const [k, v] of response.headers) outHeaders[k] = v;
  outHeaders["content-length"] = out.length;
  res.writeHead(response.status, outHeaders);
  res.end(req.method === "HEAD" ? undefined : out);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(`peer.mjs: ${req.method} ${req.url}: ${error?.stack ?? error}`);
    if (req.method === "POST" && req.url.split("?")[0].endsWith("/inbox")) {
      inboxAnswers.push({ at: now(), path: req.url, status: 500, body: String(error).slice(0, 500) });
    }
    if (!res.headersSent) sendJson(res, 500, { error: String(error) });
    else res.destroy();
  });
});

server.on("error", (error) => {
  console.error(`peer.mjs: cannot listen on ${host}:${requestedPort}: ${error.message}`);
  process.exit(1);
});

server.listen(requestedPort, host, () => {
  const { port } = server.address();
  origin = `http://${host}:${port}`;
  federation = buildFederation();
  process.stdout.write(`READY ${port}\n`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
