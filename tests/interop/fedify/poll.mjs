// Polls for the Fedify interop peer (peer.mjs): a Question built with Fedify's
// Question class, the votes that come back (a Create of a Note with `name` and
// `inReplyTo` the Question, as Mastodon sends them), and an Update with the counts.
//
//   POST /control/question  {"content", "options": ["a", "b"], "multiple"?: false,
//                            "hours"?: 24}     -> Create(Question) to followers
//   GET  /control/votes     [{"question", "actor", "name", "note_id", "to"}] as received
//   POST /control/question-update {"question": URL} -> Update(Question) to followers,
//                           with each option's replies.totalItems counting the votes

import { randomUUID } from "node:crypto";

import { Collection, Create, Note, PUBLIC_COLLECTION, Question, Update } from "@fedify/vocab";
import { Temporal } from "@js-temporal/polyfill";

const href = (u) => (u == null ? null : u.href ?? String(u));

/** question id -> {spec, voters: Set, votes: Map(name -> count)} */
const questions = new Map();
/** votes received, oldest first */
const votes = [];

function buildQuestion(ctx, identifier, id, q) {
  const options = q.options.map(
    (name) => new Note({ name, replies: new Collection({ totalItems: q.votes.get(name) ?? 0 }) })
  );
  return new Question({
    id,
    attribution: ctx.getActorUri(identifier),
    content: q.content,
    published: q.published,
    endTime: q.endTime,
    voters: q.voters.size,
    to: PUBLIC_COLLECTION,
    cc: ctx.getFollowersUri(identifier),
    ...(q.multiple ? { inclusiveOptions: options } : { exclusiveOptions: options }),
  });
}

/** Record a vote: a Create whose Note has a name and answers one of our Questions. */
export function recordVote(activity, raw) {
  const note = raw?.object;
  if (activity?.constructor?.name !== "Create" || note == null || typeof note !== "object") return;
  const question = questions.get(note.inReplyTo);
  if (question == null || typeof note.name !== "string") return;
  const actor = href(activity.actorId);
  votes.push({ question: note.inReplyTo, actor, name: note.name, note_id: note.id, to: note.to });
  if (question.options.includes(note.name)) {
    question.votes.set(note.name, (question.votes.get(note.name) ?? 0) + 1);
    question.voters.add(actor);
  }
}

export async function pollControl(key, ctx, body, env) {
  const { origin, identifier, send, HttpError } = env;
  switch (key) {
    case "GET /control/votes":
      return votes;
    case "POST /control/question": {
      const options = body?.options;
      if (!Array.isArray(options) || options.length < 2 || !options.every((o) => typeof o === "string")) {
        throw new HttpError(400, `"options" must be at least two strings`);
      }
      const id = new URL(`${origin}/users/${identifier}/questions/${randomUUID()}`);
      const published = Temporal.Now.instant();
      const q = {
        content: String(body.content ?? "<p>A question</p>"),
        options,
        multiple: !!body.multiple,
        published,
        endTime: published.add({ hours: Number(body.hours ?? 24) }),
        voters: new Set(),
        votes: new Map(),
      };
      questions.set(id.href, q);
      const question = buildQuestion(ctx, identifier, id, q);
      const create = new Create({
        id: new URL(`${id.href}/activity`),
        actor: ctx.getActorUri(identifier),
        object: question,
        to: PUBLIC_COLLECTION,
        cc: ctx.getFollowersUri(identifier),
        published,
      });
      await send(ctx, "followers", create, body.immediate, { preferSharedInbox: true });
      return { question_id: id.href, json: await create.toJsonLd({ format: "compact" }) };
    }
    case "POST /control/question-update": {
      const q = questions.get(body?.question);
      if (q == null) throw new HttpError(404, `no question ${body?.question}`);
      const question = buildQuestion(ctx, identifier, new URL(body.question), q);
      const update = new Update({
        id: new URL(`${origin}/updates/${randomUUID()}`),
        actor: ctx.getActorUri(identifier),
        object: question,
        to: PUBLIC_COLLECTION,
        cc: ctx.getFollowersUri(identifier),
      });
      await send(ctx, "followers", update, body.immediate, { preferSharedInbox: true });
      return { json: await update.toJsonLd({ format: "compact" }) };
    }
    default:
      return undefined;
  }
}
