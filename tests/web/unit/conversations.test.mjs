// Conversations in the browser module (`node --test tests/web/unit/`): the event-stream
// parser, send()'s idempotent retries, and subscribe() (stream, resume, gaps, fallback).
//
// ChatServer answers like session-service's conversation routes, in memory; its events
// route is off by default (404 `not_found`, as on a service without it) and, once `live()`,
// streams through `EventStream` objects the test writes to, closes or breaks.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { afterEach, describe, test } from "node:test";

import {
  EventStreamParser,
  STORAGE_KEY,
  SessionClient,
  SessionServiceError,
} from "../../../src/session_service/web/client/session-client.js";

import { BASE, MemoryStorage, UUID4, rejection, tick, until } from "./support.mjs";


/** One open event stream of ChatServer: the test writes to it, ends it or breaks it. */
class EventStream {
  #controller;
  #encoder = new TextEncoder();
  closed = false;

  constructor(call, signal) {
    this.call = call;
    this.body = new ReadableStream({
      start: (controller) => {
        this.#controller = controller;
      },
    });
    // As fetch: aborting the request breaks the body being read.
    signal?.addEventListener("abort", () => this.fail(new DOMException("aborted", "AbortError")));
  }

  write(text) {
    if (!this.closed) this.#controller.enqueue(this.#encoder.encode(text));
  }

  message(message) {
    this.write(`event: message\nid: ${message.seq}\ndata: ${JSON.stringify(message)}\n\n`);
  }

  end() {
    if (this.closed) return;
    this.closed = true;
    this.#controller.close();
  }

  fail(error = new TypeError("network error")) {
    if (this.closed) return;
    this.closed = true;
    this.#controller.error(error);
  }
}

class ChatServer {
  tokens = new Map();
  conversations = new Map();
  calls = [];
  streams = [];
  eventsRoute = false;
  #scripted = [];

  /** A live session; its token is stored as the page's. */
  session(storage) {
    const id = randomUUID();
    const token = randomUUID();
    this.tokens.set(token, id);
    storage.setItem(STORAGE_KEY, token);
    return { id, token };
  }

  conversation(sessionId) {
    const id = randomUUID();
    this.conversations.set(id, { id, sessionId, messages: [] });
    return id;
  }

  /** Store a message as the service does (next seq; a known client_message_id: the stored one). */
  append(conversationId, { content, role = "user", client_message_id = null, attachments = [] }) {
    const conversation = this.conversations.get(conversationId);
    const stored = conversation.messages.find(
      (message) => client_message_id !== null && message.client_message_id === client_message_id,
    );
    if (stored) return { message: stored, created: false };
    const message = {
      id: randomUUID(),
      conversation_id: conversationId,
      seq: conversation.messages.length + 1,
      role,
      content,
      attachments,
      metadata: null,
      client_message_id,
      created_at: new Date().toISOString(),
    };
    conversation.messages.push(message);
    return { message, created: true };
  }

  /** Make the events route answer: each request opens an EventStream (in `streams`). */
  live() {
    this.eventsRoute = true;
  }

  once(route, respond) {
    this.#scripted.push({ route, respond });
  }

  count(route) {
    return this.calls.filter((call) => call.route === route).length;
  }

  json(status, body, headers = {}) {
    return new Response(JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json", ...headers },
    });
  }

  problem(status, code, headers = {}) {
    return this.json(
      status,
      { status, code, detail: code },
      { "Content-Type": "application/problem+json", ...headers },
    );
  }

  fetch = async (input, init = {}) => {
    const url = new URL(String(input), BASE);
    const method = init.method ?? "GET";
    const call = {
      route: `${method} ${url.pathname}`,
      url,
      headers: new Headers(init.headers),
      body: init.body === undefined ? undefined : JSON.parse(init.body),
      signal: init.signal,
    };
    this.calls.push(call);
    await tick();
    if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
    const index = this.#scripted.findIndex((entry) => entry.route === call.route);
    if (index >= 0) {
      const [entry] = this.#scripted.splice(index, 1);
      const answer = await entry.respond(call);
      if (answer instanceof Error) throw answer;
      return answer;
    }
    return this.#answer(call);
  };

  #answer(call) {
    const token = call.headers.get("X-Session-ID");
    if (call.route === "POST /api/v1/session/validate") {
      const id = this.tokens.get(token);
      if (!id) return this.json(200, { valid: false, reason: "not_found", action: "reset" });
      return this.json(200, { valid: true, session: { id, status: "active" } });
    }
    const sessionId = this.tokens.get(token);
    if (!sessionId) return this.problem(401, "session_invalid");
    const match = /^(\w+) \/api\/v1\/session\/conversations(?:\/([^/]+)(?:\/(\w+))?)?$/.exec(
      call.route,
    );
    if (!match) return this.problem(404, "not_found");
    const [, method, conversationId, action] = match;
    if (!conversationId) {
      if (method === "POST") {
        const id = this.conversation(sessionId);
        return this.json(201, { id, title: call.body.title ?? null, last_seq: 0 });
      }
      const mine = [...this.conversations.values()].filter((c) => c.sessionId === sessionId);
      return this.json(200, { conversations: mine.map(({ id }) => ({ id })) });
    }
    const conversation = this.conversations.get(conversationId);
    if (action === "events" && !this.eventsRoute) return this.problem(404, "not_found");
    if (!conversation || conversation.sessionId !== sessionId) {
      return this.problem(404, "conversation_not_found");
    }
    if (action === "messages" && method === "POST") {
      const { message, created } = this.append(conversationId, call.body);
      return this.json(created ? 201 : 200, message);
    }
    if (action === "messages" && method === "GET") return this.#page(conversation, call.url);
    if (action === "events" && method === "GET") {
      const stream = new EventStream(call, call.signal);
      this.streams.push(stream);
      return new Response(stream.body, {
        status: 200,
        headers: { "Content-Type": "text/event-stream; charset=utf-8" },
      });
    }
    return this.problem(404, "not_found");
  }

  #page(conversation, url) {
    const number = (name) => {
      const value = url.searchParams.get(name);
      return value === null ? null : Number(value);
    };
    const [before, after, limit] = [number("before"), number("after"), number("limit") ?? 50];
    const all = conversation.messages;
    if (after !== null) {
      const page = all
        .filter((m) => m.seq > after && (before === null || m.seq < before))
        .slice(0, limit);
      return this.json(200, {
        messages: page,
        next_before: null,
        next_after: page.at(-1)?.seq ?? after,
      });
    }
    const page = all
      .filter((m) => before === null || m.seq < before)
      .reverse()
      .slice(0, limit);
    const oldest = page.at(-1)?.seq ?? null;
    return this.json(200, {
      messages: page,
      next_before: oldest !== null && oldest > 1 ? oldest : null,
      next_after: page[0]?.seq ?? null,
    });
  }
}

let stops = [];
afterEach(() => {
  for (const stop of stops) stop();
  stops = [];
});

/** A started client on a ChatServer, with one conversation; `delays` records every wait. */
async function setUp({ sleep, ...options } = {}) {
  const server = new ChatServer();
  const storage = new MemoryStorage();
  const session = server.session(storage);
  const conversationId = server.conversation(session.id);
  const delays = [];
  const client = new SessionClient({
    baseUrl: BASE,
    storage,
    fetch: server.fetch,
    retryBaseMs: 100,
    sleep:
      sleep ??
      (async (ms) => {
        delays.push(ms);
        await tick();
      }),
    ...options,
  });
  await client.start();
  return { server, storage, client, session, conversationId, delays };
}

/** Store messages with these contents; the stored messages. */
function appendAll(server, conversationId, contents) {
  return contents.map((content) => server.append(conversationId, { content }).message);
}

/** The client_message_id of every send to the conversation, in order. */
function sentIds(server, conversationId) {
  const route = `POST /api/v1/session/conversations/${conversationId}/messages`;
  return server.calls.filter((c) => c.route === route).map((c) => c.body.client_message_id);
}

/** The query of every messages page asked for. */
function pageQueries(server) {
  return server.calls
    .filter((c) => c.url.pathname.endsWith("/messages") && c.route.startsWith("GET"))
    .map((c) => c.url.search);
}

/** subscribe(), recording messages, statuses and errors; stopped after the test. */
function follow(client, conversationId, options = {}) {
  const seen = [];
  const statuses = [];
  const errors = [];
  const stop = client.subscribe(conversationId, (message) => seen.push(message), {
    onStatus: (status) => statuses.push(status),
    onError: (error) => errors.push(error),
    ...options,
  });
  stops.push(stop);
  return { seen, statuses, errors, stop, seqs: () => seen.map((message) => message.seq) };
}

// ------------------------------------------------------------------------------------------
// The parser

/** Every event of `text`, fed to one parser in the given pieces. */
function parseAll(pieces) {
  const parser = new EventStreamParser();
  return pieces.flatMap((piece) => parser.push(piece));
}

describe("EventStreamParser", () => {
  const stream =
    "\uFEFF: connected\r\n" +
    "retry: 2500\r\n" +
    "event: message\r\nid: 7\r\ndata: {\"seq\":7}\r\n\r\n" +
    ": heartbeat\n\n" +
    "data:first line\ndata: second line\n\n" +
    "event: message\rid: 8\rdata: {\"seq\":8}\r\r" +
    "id\ndata\n\n" +
    "data: trailing, never dispatched";
  const expected = [
    { type: "message", data: '{"seq":7}', id: "7" },
    { type: "message", data: "first line\nsecond line", id: "7" },
    { type: "message", data: '{"seq":8}', id: "8" },
    { type: "message", data: "", id: "" },
  ];

  test("parses events, comments, CRLF/CR/LF, multi-line data, id and retry", () => {
    const parser = new EventStreamParser();
    assert.deepEqual(parser.push(stream), expected);
    assert.equal(parser.retry, 2500);
    assert.equal(parser.lastEventId, "");
  });

  test("gives the same events however the text is cut, CRLF split included", () => {
    for (let cut = 0; cut <= stream.length; cut += 1) {
      assert.deepEqual(parseAll([stream.slice(0, cut), stream.slice(cut)]), expected, `cut ${cut}`);
    }
    assert.deepEqual(parseAll([...stream]), expected, "one character at a time");
  });

  test("a block of comments or fields without data dispatches nothing", () => {
    assert.deepEqual(parseAll([": ping\n\n: ping\n\nevent: message\nid: 3\n\n"]), []);
  });

  test("other event types keep their name; the default type does not leak", () => {
    const events = parseAll(["event: typing\ndata: x\n\ndata: y\n\n"]);
    assert.deepEqual(
      events.map((event) => event.type),
      ["typing", "message"],
    );
  });

  test("an id with NUL and a retry that is not digits are ignored; one space is stripped", () => {
    const parser = new EventStreamParser();
    const events = parser.push("id: 4\nretry: 1000\n\nid: 5\0\nretry: 1e3\ndata:  two spaces\n\n");
    assert.deepEqual(events, [{ type: "message", data: " two spaces", id: "4" }]);
    assert.equal(parser.retry, 1000);
  });

  test("a BOM is dropped only at the very start", () => {
    assert.deepEqual(parseAll(["", "\uFEFFdata: a\n\n", "\uFEFFdata: b\n\n"]), [
      { type: "message", data: "a", id: "" },
    ]);
  });
});

// ------------------------------------------------------------------------------------------
// send

describe("send", () => {
  const route = (id) => `POST /api/v1/session/conversations/${id}/messages`;

  test("always sends a new client_message_id with the text and attachments", async () => {
    const { server, client, conversationId } = await setUp();
    const fileId = randomUUID();

    const first = await client.send(conversationId, "Hello", { attachments: [fileId] });
    const second = await client.send(conversationId, "Hello");

    const bodies = server.calls.filter((c) => c.route === route(conversationId)).map((c) => c.body);
    assert.match(bodies[0].client_message_id, UUID4);
    assert.notEqual(bodies[0].client_message_id, bodies[1].client_message_id);
    assert.deepEqual(bodies[0], {
      content: "Hello",
      client_message_id: bodies[0].client_message_id,
      attachments: [fileId],
    });
    assert.deepEqual([first.seq, second.seq], [1, 2]);
    assert.equal(first.client_message_id, bodies[0].client_message_id);
  });

  test("without crypto.randomUUID (an insecure origin) the id is still a random UUIDv4", async () => {
    const { server, client, conversationId } = await setUp();
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, "crypto");
    const real = globalThis.crypto;
    Object.defineProperty(globalThis, "crypto", {
      value: { getRandomValues: (array) => real.getRandomValues(array) },
      configurable: true,
    });
    try {
      await client.send(conversationId, "one");
      await client.send(conversationId, "two");
    } finally {
      Object.defineProperty(globalThis, "crypto", descriptor);
    }
    const ids = sentIds(server, conversationId);
    assert.equal(ids.length, 2);
    for (const id of ids) assert.match(id, UUID4);
    assert.notEqual(ids[0], ids[1]);
  });

  test("a lost answer is retried with the same id: stored once, the stored one returned", async () => {
    const { server, client, conversationId, delays } = await setUp();
    // The message arrives and is stored, but its answer never comes back.
    server.once(route(conversationId), (call) => {
      server.append(conversationId, call.body);
      return new TypeError("fetch failed");
    });

    const message = await client.send(conversationId, "Are you there?");

    const ids = sentIds(server, conversationId);
    assert.equal(ids.length, 2);
    assert.equal(ids[0], ids[1]);
    assert.equal(server.conversations.get(conversationId).messages.length, 1);
    assert.equal(message.seq, 1);
    assert.deepEqual(delays, [100]);
  });

  test("502/503/504 and 429 are retried (after Retry-After) with the same ids", async () => {
    const { server, client, conversationId, delays } = await setUp();
    const answers = [
      server.problem(503, "database_unavailable", { "Retry-After": "2" }),
      server.problem(504, "gateway_timeout"),
      server.problem(429, "rate_limited", { "Retry-After": "1" }),
    ];
    for (const answer of answers) server.once(route(conversationId), () => answer);

    const message = await client.send(conversationId, "Hello");

    const ids = sentIds(server, conversationId);
    assert.equal(ids.length, 4);
    assert.equal(new Set(ids).size, 1);
    const keys = server.calls
      .filter((call) => call.route === route(conversationId))
      .map((call) => call.headers.get("Idempotency-Key"));
    assert.equal(new Set(keys).size, 1);
    assert.match(keys[0], UUID4);
    assert.deepEqual(delays, [2000, 200, 1000]);
    assert.equal(message.client_message_id, ids[0]);
    assert.equal(server.conversations.get(conversationId).messages.length, 1);
  });

  test("retries stop at maxRetries with the last error", async () => {
    const { server, client, conversationId } = await setUp({ maxRetries: 1 });
    server.once(route(conversationId), () => server.problem(502, "unexpected"));
    server.once(route(conversationId), () => new TypeError("fetch failed"));

    const error = await rejection(client.send(conversationId, "Hello"));

    assert.equal(error.code, "cors_or_network");
    assert.equal(server.count(route(conversationId)), 2);
  });

  test("a 500 (a fault, not an outage) is not retried", async () => {
    const { server, client, conversationId } = await setUp();
    server.once(route(conversationId), () => server.problem(500, "internal_error"));

    const error = await rejection(client.send(conversationId, "Hello"));

    assert.equal(error.code, "internal_error");
    assert.equal(server.count(route(conversationId)), 1);
  });

  test("a refusal is not retried: message_too_long", async () => {
    const { server, client, conversationId } = await setUp();
    server.once(route(conversationId), () => server.problem(422, "message_too_long"));

    const error = await rejection(client.send(conversationId, "x".repeat(40_000)));

    assert.ok(error instanceof SessionServiceError);
    assert.equal(error.code, "message_too_long");
    assert.equal(server.count(route(conversationId)), 1);
  });

  test("the caller's clientMessageId makes a second send of the same message safe", async () => {
    const { server, client, conversationId } = await setUp();

    const first = await client.send(conversationId, "Once", { clientMessageId: "draft-1" });
    const again = await client.send(conversationId, "Once", { clientMessageId: "draft-1" });

    assert.equal(first.id, again.id);
    assert.equal(server.conversations.get(conversationId).messages.length, 1);
  });

  test("after the session is replaced the message is not sent to the new session", async () => {
    const { server, client, conversationId, storage } = await setUp();
    server.tokens.clear(); // the session is gone: 401, validate says not_found, reset
    server.once("POST /api/v1/session/reset", () => {
      const fresh = randomUUID();
      server.tokens.set(fresh, randomUUID());
      const session = { id: server.tokens.get(fresh), token: fresh };
      return server.json(201, { session, notice: "" });
    });

    const error = await rejection(client.send(conversationId, "Hello"));

    assert.equal(error.code, "session_invalid");
    assert.equal(server.count(route(conversationId)), 1);
    assert.notEqual(storage.getItem(STORAGE_KEY), null);
  });
});

describe("conversations, createConversation, messages", () => {
  test("list, create (repeated after no answer with its Idempotency-Key) and pages", async () => {
    const { server, client, conversationId } = await setUp();
    for (const content of ["a", "b", "c"]) server.append(conversationId, { content });

    const created = await client.createConversation({ title: "Report" });
    server.once("POST /api/v1/session/conversations", () => new TypeError("fetch failed"));
    const again = await client.createConversation();
    const listed = await client.conversations();
    const newest = await client.messages(conversationId, { limit: 2 });
    const older = await client.messages(conversationId, { before: newest.next_before });
    const after = await client.messages(conversationId, { after: 1 });

    const creates = server.calls.filter((c) => c.route === "POST /api/v1/session/conversations");
    assert.deepEqual(
      creates.map((c) => c.body),
      [{ title: "Report" }, {}, {}],
    );
    const keys = creates.map((c) => c.headers.get("Idempotency-Key"));
    for (const key of keys) assert.match(key, UUID4);
    assert.equal(keys[1], keys[2], "the repeat carries the same key");
    assert.notEqual(keys[0], keys[1], "another call, another key");
    assert.deepEqual(listed.map((c) => c.id), [conversationId, created.id, again.id]);
    assert.deepEqual(newest.messages.map((m) => m.seq), [3, 2]);
    assert.equal(newest.next_before, 2);
    assert.deepEqual(older.messages.map((m) => m.seq), [1]);
    assert.equal(older.next_before, null);
    assert.deepEqual(after.messages.map((m) => m.seq), [2, 3]);
    assert.deepEqual(pageQueries(server), ["?limit=2", "?before=2", "?after=1"]);
  });

  test("a window that is not a whole number is refused before any request", async () => {
    const { server, client, conversationId } = await setUp();
    const before = server.calls.length;
    await assert.rejects(client.messages(conversationId, { before: "2" }), TypeError);
    assert.equal(server.calls.length, before);
  });
});

// ------------------------------------------------------------------------------------------
// subscribe

describe("subscribe over the event stream", () => {
  test("delivers each message once in order; heartbeats are skipped; the token stays in the header", async () => {
    const { server, client, conversationId, session } = await setUp();
    server.live();
    const { seen, statuses, seqs } = follow(client, conversationId);
    await until(() => server.streams.length === 1);
    const stream = server.streams[0];
    const [one, two] = appendAll(server, conversationId, ["Hi", "Hello!"]);

    stream.write(": heartbeat\n\n");
    stream.message(one);
    stream.message(one); // a repeat
    stream.write(`event: message\nid: 2\ndata: ${JSON.stringify(two).slice(0, 20)}`);
    stream.write(`${JSON.stringify(two).slice(20)}\n\n: heartbeat\n\n`);
    await until(() => seen.length === 2);

    assert.deepEqual(seqs(), [1, 2]);
    assert.equal(seen[1].content, "Hello!");
    assert.deepEqual(statuses, ["connecting", "live"]);
    const call = stream.call;
    assert.equal(call.url.search, "?after=0");
    assert.equal(call.headers.get("Accept"), "text/event-stream");
    assert.equal(call.headers.get("X-Session-ID"), [...server.tokens.keys()][0]);
    assert.equal(call.headers.get("Last-Event-ID"), null);
    assert.ok(!call.url.href.includes(call.headers.get("X-Session-ID")));
    assert.ok(session.id);
  });

  test("after a disconnect it resumes with Last-Event-ID = the last seq delivered", async () => {
    const { server, client, conversationId, delays } = await setUp();
    server.live();
    const messages = appendAll(server, conversationId, ["a", "b", "c"]);
    const { seqs, statuses } = follow(client, conversationId, { after: 1 });
    await until(() => server.streams.length === 1);
    server.streams[0].message(messages[1]);
    await until(() => seqs().length === 1);

    server.streams[0].fail(); // the connection drops
    await until(() => server.streams.length === 2);
    server.streams[1].message(messages[1]); // the service replays from its own point: dropped
    server.streams[1].message(messages[2]);
    await until(() => seqs().length === 2);
    server.streams[1].end(); // ended by the server
    await until(() => server.streams.length === 3);

    assert.deepEqual(seqs(), [2, 3]);
    assert.equal(server.streams[0].call.headers.get("Last-Event-ID"), null);
    assert.equal(server.streams[0].call.url.search, "?after=1");
    assert.equal(server.streams[1].call.headers.get("Last-Event-ID"), "2");
    assert.equal(server.streams[1].call.url.search, "?after=2");
    assert.equal(server.streams[2].call.headers.get("Last-Event-ID"), "3");
    assert.deepEqual(statuses.slice(0, 4), ["connecting", "live", "reconnecting", "live"]);
    // Each drop came after data arrived: the delay starts again at the base (+ up to 25%).
    assert.equal(delays.length, 2);
    for (const delay of delays) assert.ok(delay >= 100 && delay <= 125, String(delays));
  });

  test("connection failures back off exponentially, capped; 4xx ends it with onError", async () => {
    const { server, client, conversationId, delays } = await setUp();
    const events = `GET /api/v1/session/conversations/${conversationId}/events`;
    for (let i = 0; i < 10; i += 1) server.once(events, () => new TypeError("fetch failed"));
    server.once(events, () => server.problem(404, "conversation_not_found"));
    const { errors, statuses } = follow(client, conversationId);

    await until(() => errors.length === 1);

    assert.equal(errors[0].code, "conversation_not_found");
    assert.equal(server.count(events), 11);
    const bases = [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000];
    assert.equal(delays.length, bases.length);
    delays.forEach((delay, i) => {
      assert.ok(delay >= bases[i] && delay <= bases[i] * 1.25, String(delays));
    });
    assert.equal(statuses.at(-1), "closed");
    assert.equal(server.count(`GET /api/v1/session/conversations/${conversationId}/messages`), 0);
  });

  test("the stream's retry field sets the reconnection delay", async () => {
    const { server, client, conversationId, delays } = await setUp();
    server.live();
    follow(client, conversationId);
    await until(() => server.streams.length === 1);
    server.streams[0].write("retry: 4000\n\n");
    await tick();
    server.streams[0].end();
    await until(() => server.streams.length === 2);
    assert.ok(delays[0] >= 4000 && delays[0] <= 5000, String(delays));
  });

  test("a seq that jumps has the missing range fetched first: never a gap", async () => {
    const { server, client, conversationId } = await setUp();
    server.live();
    const messages = appendAll(server, conversationId, ["a", "b", "c", "d", "e"]);
    const { seqs } = follow(client, conversationId, { after: 1 });
    await until(() => server.streams.length === 1);

    server.streams[0].message(messages[4]); // 5 arrives first: 2, 3, 4 are fetched, then 5
    server.streams[0].message(messages[3]); // already delivered by then
    server.streams[0].write("event: message\nid: 6\ndata: {not json\n\n"); // unreadable: skipped
    const six = server.append(conversationId, { content: "f" }).message;
    const seven = server.append(conversationId, { content: "g" }).message;
    server.streams[0].message(seven); // brings 6 through the gap
    await until(() => seqs().length === 6);

    assert.deepEqual(seqs(), [2, 3, 4, 5, 6, 7]);
    assert.equal(six.seq, 6);
    assert.deepEqual(pageQueries(server), [
      "?after=1&before=5&limit=200",
      "?after=5&before=7&limit=200",
    ]);
  });

  test("a stream that goes silent beyond idleTimeoutMs is reopened", async () => {
    const { server, client, conversationId } = await setUp();
    server.live();
    follow(client, conversationId, { idleTimeoutMs: 30 });
    await until(() => server.streams.length === 1);
    server.streams[0].write(": heartbeat\n\n"); // heartbeats keep it open...
    await until(() => server.streams.length === 2, "a reconnection after the silence");
    assert.ok(server.streams[0].closed);
  });

  test("unsubscribing aborts the stream and delivers nothing more", async () => {
    const { server, client, conversationId } = await setUp();
    server.live();
    const { seen, statuses, stop } = follow(client, conversationId);
    await until(() => server.streams.length === 1);

    stop();
    stop();
    server.streams[0].message(server.append(conversationId, { content: "late" }).message);
    await tick();
    await tick();

    assert.ok(server.streams[0].call.signal.aborted);
    assert.deepEqual(seen, []);
    assert.equal(server.streams.length, 1);
    assert.deepEqual(statuses, ["connecting", "live", "closed"]);
  });

  test("an onMessage that throws is reported and delivery goes on", async () => {
    const { server, client, conversationId } = await setUp();
    server.live();
    const reported = [];
    const original = globalThis.reportError;
    globalThis.reportError = (error) => reported.push(error);
    try {
      const seen = [];
      stops.push(
        client.subscribe(conversationId, (message) => {
          seen.push(message.seq);
          if (message.seq === 1) throw new Error("page bug");
        }),
      );
      await until(() => server.streams.length === 1);
      for (const message of appendAll(server, conversationId, ["a", "b"])) {
        server.streams[0].message(message);
      }
      await until(() => seen.length === 2);
      assert.deepEqual(seen, [1, 2]);
      assert.equal(reported[0].message, "page bug");
    } finally {
      if (original === undefined) delete globalThis.reportError;
      else globalThis.reportError = original;
    }
  });
});

describe("subscribe without an events route: polling", () => {
  const messagesRoute = (id) => `GET /api/v1/session/conversations/${id}/messages`;

  test("a 404 not_found switches to polling messages after the last seq", async () => {
    const { server, client, conversationId, delays } = await setUp();
    server.append(conversationId, { content: "already shown" });
    const options = { after: 1, pollIntervalMs: 3000 };
    const { seen, statuses, seqs } = follow(client, conversationId, options);
    await until(() => server.count(messagesRoute(conversationId)) >= 2);

    server.append(conversationId, { content: "reply", role: "assistant" });
    server.append(conversationId, { content: "and more", role: "assistant" });
    await until(() => seen.length === 2);
    const polls = server.count(messagesRoute(conversationId));
    await until(() => server.count(messagesRoute(conversationId)) > polls + 1);

    assert.deepEqual(seqs(), [2, 3]);
    assert.deepEqual(statuses, ["connecting", "polling"]);
    assert.equal(server.count(`GET /api/v1/session/conversations/${conversationId}/events`), 1);
    const queries = pageQueries(server);
    assert.equal(queries[0], "?after=1&limit=200");
    assert.equal(queries.at(-1), "?after=3&limit=200");
    assert.ok(delays.every((delay) => delay === 3000), String(delays));
  });

  test("a full page is followed by the next one at once", async () => {
    const { server, client, conversationId } = await setUp();
    for (let i = 0; i < 250; i += 1) server.append(conversationId, { content: `m${i}` });
    const { seqs } = follow(client, conversationId);
    await until(() => seqs().length === 250);
    assert.deepEqual(seqs(), Array.from({ length: 250 }, (_, i) => i + 1));
    assert.deepEqual(pageQueries(server).slice(0, 2), [
      "?after=0&limit=200",
      "?after=200&limit=200",
    ]);
  });

  test("a failed poll backs off, then polling goes on; deletion ends it", async () => {
    const { server, client, conversationId, delays } = await setUp();
    const { errors, statuses, seqs } = follow(client, conversationId, { pollIntervalMs: 1000 });
    await until(() => server.count(messagesRoute(conversationId)) >= 1);
    // The messages route's own retries (maxRetries 3) are spent, then the subscription waits.
    for (let i = 0; i < 4; i += 1) {
      server.once(messagesRoute(conversationId), () => server.problem(503, "database_unavailable"));
    }
    server.append(conversationId, { content: "after the outage" });
    await until(() => seqs().length === 1);

    server.conversations.delete(conversationId);
    await until(() => errors.length === 1);

    assert.equal(errors[0].code, "conversation_not_found");
    assert.ok(statuses.includes("reconnecting"));
    assert.equal(statuses.at(-1), "closed");
    const count = server.count(messagesRoute(conversationId));
    await tick();
    assert.equal(server.count(messagesRoute(conversationId)), count, "no poll after the end");
    // The route's own retries (100, 200, 400), then the subscription's backoff.
    const outage = delays.findIndex((delay) => delay === 100);
    assert.deepEqual(delays.slice(outage, outage + 3), [100, 200, 400]);
    assert.ok(delays[outage + 3] >= 100 && delays[outage + 3] <= 125, String(delays));
  });

  test("unsubscribing stops the polling, even during its wait", async () => {
    const { server, client, conversationId } = await setUp({ sleep: () => new Promise(() => {}) });
    const { stop, statuses } = follow(client, conversationId);
    await until(() => statuses.includes("polling"));
    await until(() => server.count(messagesRoute(conversationId)) === 1);

    stop();
    await tick();

    assert.equal(statuses.at(-1), "closed");
    assert.equal(server.count(messagesRoute(conversationId)), 1);
  });

  test("a page that is not a stream (a catch-all in front of the service) means polling", async () => {
    const { server, client, conversationId } = await setUp();
    const html = { status: 200, headers: { "Content-Type": "text/html" } };
    server.once(`GET /api/v1/session/conversations/${conversationId}/events`, () => {
      return new Response("<!doctype html><p>app</p>", html);
    });
    const { statuses } = follow(client, conversationId);
    await until(() => statuses.includes("polling"));
  });
});
