// The browser module's flow, run in Node (`node --test tests/web/unit/`).
//
// The module under test is the real session-client.js. Fakes stand in for what a browser
// and the service provide: FakeServer (fetch, answering like session-service's API),
// FakeXHR (XMLHttpRequest and the storage endpoint behind it), MemoryStorage (localStorage),
// FakeLocks (navigator.locks, shared by "tabs") and an EventTarget as `window`.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, test } from "node:test";

import {
  PUBLIC_ID_KEY,
  RESET_NOTICE,
  STORAGE_KEY,
  SessionClient,
  SessionServiceError,
  messageFor,
} from "../../../src/session_service/web/client/session-client.js";

import { BASE, MemoryStorage, UUID4, rejection, tick, until } from "./support.mjs";

const RESET_REASONS = new Set([
  "missing",
  "malformed",
  "not_found",
  "expired",
  "reset",
  "rotated",
  "upgraded",
  "tampered",
  "user_requested",
]);

// ------------------------------------------------------------------------------------------
// Fakes

/** A storage that refuses everything, as in some private modes. */
class BrokenStorage {
  getItem() {
    throw new Error("SecurityError: storage is disabled");
  }
  setItem() {
    throw new Error("QuotaExceededError");
  }
  removeItem() {
    throw new Error("SecurityError: storage is disabled");
  }
}

/** navigator.locks: one holder per name at a time, in request order. */
class FakeLocks {
  requests = [];
  #tails = new Map();
  request(name, callback) {
    this.requests.push(name);
    const tail = this.#tails.get(name) ?? Promise.resolve();
    const run = tail.then(() => callback({ name, mode: "exclusive" }));
    this.#tails.set(
      name,
      run.then(
        () => undefined,
        () => undefined,
      ),
    );
    return run;
  }
}

/**
 * session-service's browser API in memory. A session has a public id and a secret token (sent
 * in X-Session-ID); details rotate the token. Every answer carries X-Request-ID `req-N`;
 * `once(route, respond)` scripts the next answer of a route ("POST /api/v1/session/reset");
 * `calls` records every request.
 */
class FakeServer {
  /** Sessions by public id. */
  sessions = new Map();
  /** Public id by live token. */
  tokens = new Map();
  /** Why a token that worked once stopped working (`rotated`, `reset`, `upgraded`), by token. */
  ended = new Map();
  /** Every token the server ever issued, and every public id. */
  issued = new Set();
  publicIds = new Set();
  files = new Map();
  calls = [];
  #scripted = [];
  #requests = 0;

  /** A session on the server: `{id, token}`. */
  session(status = "active") {
    const id = randomUUID();
    const now = new Date().toISOString();
    this.publicIds.add(id);
    this.sessions.set(id, {
      id,
      status,
      created_at: now,
      updated_at: now,
      last_seen_at: now,
      expires_at: null,
      completed_at: null,
      consent_user_data: false,
      consent_given_at: null,
      previous_session_id: null,
      name: null,
      email: null,
    });
    return { id, token: this.#issue(id) };
  }

  #issue(id) {
    const token = randomUUID();
    this.tokens.set(token, id);
    this.issued.add(token);
    return token;
  }

  /** Replace a live token (as details do, e.g. in another tab); returns the new token. */
  rotate(token) {
    const id = this.tokens.get(token);
    assert.ok(id, "rotate: not a live token");
    this.tokens.delete(token);
    this.ended.set(token, "rotated");
    return this.#issue(id);
  }

  /** A session id stored by a version from before tokens: refused as `upgraded`. */
  legacyId() {
    const old = randomUUID();
    this.ended.set(old, "upgraded");
    return old;
  }

  /** The live token of the session `id`. */
  tokenOf(id) {
    return [...this.tokens].find(([, owner]) => owner === id)?.[0];
  }

  once(route, respond) {
    this.#scripted.push({ route, respond });
  }

  count(route) {
    return this.calls.filter((call) => call.route === route).length;
  }

  routes() {
    return this.calls.map((call) => call.route);
  }

  fetch = async (input, init = {}) => {
    const url = new URL(String(input), BASE);
    const method = init.method ?? "GET";
    const call = {
      route: `${method} ${url.pathname}`,
      url: url.href,
      path: url.pathname,
      headers: new Headers(init.headers),
      body: init.body === undefined ? undefined : JSON.parse(init.body),
      rawBody: init.body,
      signal: init.signal,
    };
    this.calls.push(call);
    await tick(); // answers arrive later, so concurrent calls really overlap
    const index = this.#scripted.findIndex((entry) => entry.route === call.route);
    if (index >= 0) {
      const [entry] = this.#scripted.splice(index, 1);
      const answer = await entry.respond(call);
      if (answer instanceof Error) throw answer;
      return answer;
    }
    return this.#answer(call);
  };

  json(status, body, headers = {}) {
    return new Response(body === null ? null : JSON.stringify(body), {
      status,
      headers: {
        "Content-Type": "application/json",
        "X-Request-ID": `req-${++this.#requests}`,
        ...headers,
      },
    });
  }

  problem(status, code, extra = {}, headers = {}) {
    return this.json(
      status,
      { type: `urn:session-service:problem:${code}`, status, code, detail: code, ...extra },
      { "Content-Type": "application/problem+json", ...headers },
    );
  }

  /** The session of a live token, or undefined. */
  #owner(token) {
    if (!token || !UUID4.test(token)) return undefined;
    return this.sessions.get(this.tokens.get(token.toLowerCase()));
  }

  #invalidReason(token) {
    if (!token || !UUID4.test(token)) return "malformed";
    const session = this.#owner(token);
    if (!session) return this.ended.get(token.toLowerCase()) ?? "not_found";
    if (session.status === "reset" || session.status === "expired") return session.status;
    return null;
  }

  #holder(call) {
    const token = call.headers.get("X-Session-ID");
    const reason = this.#invalidReason(token);
    if (reason) return { error: this.problem(401, "session_invalid", { reason, action: "reset" }) };
    return { session: this.#owner(token), token };
  }

  #public(session) {
    const { name: _name, email: _email, ...rest } = session;
    return rest;
  }

  async #answer(call) {
    const { route } = call;
    if (route === "POST /api/v1/sessions") {
      const { id, token } = this.session();
      return this.json(201, { ...this.#public(this.sessions.get(id)), token });
    }
    if (route === "POST /api/v1/session/validate") {
      const token = call.headers.get("X-Session-ID");
      const reason = this.#invalidReason(token);
      if (reason) return this.json(200, { valid: false, reason, action: "reset" });
      return this.json(200, { valid: true, session: this.#public(this.#owner(token)) });
    }
    if (route === "POST /api/v1/session/reset") {
      if (!RESET_REASONS.has(call.body?.reason)) return this.problem(422, "validation_error");
      const presented = call.headers.get("X-Session-ID");
      // As the server: a token already replaced (rotated, or reset) is told to use its
      // replacement, never given a second new session.
      if (["rotated", "reset"].includes(this.ended.get(presented))) {
        return this.problem(409, "token_replaced");
      }
      const previous = this.#owner(presented);
      if (previous) {
        previous.status = "reset";
        this.tokens.delete(presented);
        this.ended.set(presented, "reset");
      }
      const { id, token } = this.session();
      const fresh = this.sessions.get(id);
      fresh.previous_session_id = previous?.id ?? null;
      return this.json(201, { session: { ...this.#public(fresh), token }, notice: RESET_NOTICE });
    }
    const { session, token, error } = this.#holder(call);
    if (error) return error;
    const fileRoute = /^(\w+) \/api\/v1\/session\/files\/([^/]+)(\/\w+)?$/.exec(route);
    if (route === "GET /api/v1/session") return this.json(200, session);
    if (route === "PUT /api/v1/session/details") {
      if (call.body.consent_user_data !== true) return this.problem(422, "validation_error");
      Object.assign(session, {
        name: call.body.name,
        email: call.body.email,
        consent_user_data: true,
        status: "pending_verification",
      });
      return this.json(200, { ...session, token: this.rotate(token) });
    }
    if (route === "DELETE /api/v1/session") {
      this.sessions.delete(session.id);
      this.tokens.delete(token);
      return new Response(null, { status: 204, headers: { "X-Request-ID": "req-erase" } });
    }
    if (route === "GET /api/v1/session/export") {
      return this.json(200, {
        format: "session-service.export.v2",
        exported_at: new Date().toISOString(),
        session,
        files: this.#filesOf(session).map((file) => ({ ...file, download_url: null })),
        audit_events: [],
      });
    }
    if (route === "GET /api/v1/session/files") {
      return this.json(200, { files: this.#filesOf(session) });
    }
    if (route === "POST /api/v1/session/uploads") {
      const id = randomUUID();
      const file = {
        id,
        name: call.body.name,
        content_type: call.body.content_type,
        size: call.body.size,
        stored_size: null,
        status: "pending",
        rejection_reason: null,
        created_at: new Date().toISOString(),
        uploaded_at: null,
      };
      this.files.set(id, { file, sessionId: session.id, bytes: null });
      return this.json(201, {
        file,
        upload: {
          url: "/api/v1/storage/uploads",
          fields: {
            key: `uploads/storage-id/${id}/${call.body.name}`,
            "Content-Type": call.body.content_type,
            policy: "eyJwb2xpY3kiOiJmYWtlIn0=",
            "x-amz-signature": "f4k3",
          },
          expires_at: new Date(Date.now() + 300_000).toISOString(),
        },
      });
    }
    if (fileRoute) {
      const [, method, fileId, action] = fileRoute;
      const entry = this.files.get(fileId);
      if (!entry || entry.sessionId !== session.id) return this.problem(404, "file_not_found");
      if (method === "POST" && action === "/complete") {
        if (entry.bytes === null) return this.problem(409, "upload_missing");
        if (!entry.bytes.startsWith("%PDF-")) {
          Object.assign(entry.file, { status: "rejected", rejection_reason: "signature_mismatch" });
          return this.problem(422, "upload_rejected", { reason: "signature_mismatch" });
        }
        Object.assign(entry.file, {
          status: "uploaded",
          stored_size: entry.bytes.length,
          uploaded_at: new Date().toISOString(),
        });
        return this.json(200, entry.file);
      }
      if (method === "GET" && action === "/download") {
        return this.json(200, { url: `/api/v1/storage/downloads/token-${fileId}`, expires_at: "" });
      }
      if (method === "DELETE" && action === undefined) {
        this.files.delete(fileId);
        return new Response(null, { status: 204 });
      }
    }
    return this.problem(404, "not_found");
  }

  #filesOf(session) {
    return [...this.files.values()]
      .filter((entry) => entry.sessionId === session.id)
      .map((entry) => entry.file);
  }

  /** The storage endpoint behind FakeXHR: keep the posted file under its slot. */
  async receive(xhr) {
    const key = xhr.entries.find(([name]) => name === "key")?.[1];
    const file = xhr.entries.at(-1)[1];
    const entry = this.files.get(key.split("/")[2]);
    entry.bytes = await file.text();
  }
}

/** XMLHttpRequest as the module uses it; `FakeXHR.storage(xhr)` plays the storage side. */
class FakeXHR {
  static instances = [];
  static storage = async (xhr) => xhr.respond(204);

  upload = { onprogress: null };
  status = 0;
  responseText = "";
  requestHeaders = {};
  responseHeaders = {};
  aborted = false;

  constructor() {
    FakeXHR.instances.push(this);
  }
  open(method, url) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name, value) {
    this.requestHeaders[name] = value;
  }
  getResponseHeader(name) {
    return this.responseHeaders[name.toLowerCase()] ?? null;
  }
  send(form) {
    this.form = form;
    this.entries = [...form.entries()];
    setTimeout(() => FakeXHR.storage(this), 1);
  }
  progress(loaded, total) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true });
  }
  respond(status, text = "", headers = {}) {
    if (this.aborted) return;
    this.status = status;
    this.responseText = text;
    this.responseHeaders = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
    this.onload?.();
  }
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
}

// ------------------------------------------------------------------------------------------
// Set-up

/** Browser globals a test installs; restored after each test. */
const saved = new Map();
function setGlobal(name, value) {
  if (!saved.has(name)) saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name));
  Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
}

let server;
let storage;

beforeEach(() => {
  server = new FakeServer();
  storage = new MemoryStorage();
  FakeXHR.instances = [];
  FakeXHR.storage = async (xhr) => {
    await server.receive(xhr);
    xhr.respond(204);
  };
  setGlobal("XMLHttpRequest", FakeXHR);
});

afterEach(() => {
  for (const [name, descriptor] of saved) {
    if (descriptor) Object.defineProperty(globalThis, name, descriptor);
    else delete globalThis[name];
  }
  saved.clear();
});

function makeClient(options = {}) {
  return new SessionClient({
    baseUrl: BASE,
    storage,
    fetch: server.fetch,
    sleep: async () => {},
    ...options,
  });
}

/** Every event of `type` the client dispatches, as its detail. */
function record(client, type) {
  const seen = [];
  client.addEventListener(type, (event) => seen.push(event.detail));
  return seen;
}

// ------------------------------------------------------------------------------------------
// Start, validate, reset

describe("start", () => {
  test("with nothing stored creates a session, stores its token and announces its id", async () => {
    const client = makeClient();
    const sessions = record(client, "session");
    const resets = record(client, "reset");

    const id = await client.start();

    assert.deepEqual(server.routes(), ["POST /api/v1/sessions"]);
    assert.ok(server.sessions.has(id));
    const token = server.tokenOf(id);
    assert.notEqual(token, id);
    assert.equal(storage.getItem(STORAGE_KEY), token);
    assert.equal(storage.getItem(PUBLIC_ID_KEY), id);
    assert.equal(client.sessionId, id);
    assert.deepEqual(sessions, [{ sessionId: id }]);
    assert.deepEqual(resets, []);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), null);
  });

  test("with a stored valid token keeps it after one validate, learning the public id", async () => {
    const { id, token } = server.session();
    storage.setItem(STORAGE_KEY, token);
    const client = makeClient();
    const resets = record(client, "reset");
    assert.equal(client.sessionId, null);

    assert.equal(await client.start(), id);

    assert.deepEqual(server.routes(), ["POST /api/v1/session/validate"]);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), token);
    assert.equal(storage.getItem(STORAGE_KEY), token);
    assert.equal(storage.getItem(PUBLIC_ID_KEY), id);
    assert.equal(client.sessionId, id);
    assert.deepEqual(resets, []);
  });

  test("a reload keeps the session, its token and its public id", async () => {
    const first = makeClient();
    const id = await first.start();
    const token = storage.getItem(STORAGE_KEY);
    server.calls.length = 0;

    const reloaded = makeClient();
    assert.equal(await reloaded.start(), id);

    assert.equal(reloaded.sessionId, id);
    assert.deepEqual(server.routes(), ["POST /api/v1/session/validate"]);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), token);
  });

  test("with a stored invalid token resets with the validate reason and fires the notice", async () => {
    const old = server.session("expired");
    storage.setItem(STORAGE_KEY, old.token);
    const client = makeClient();
    const resets = record(client, "reset");
    const sessions = record(client, "session");

    const id = await client.start();

    assert.deepEqual(server.routes(), [
      "POST /api/v1/session/validate",
      "POST /api/v1/session/reset",
    ]);
    const reset = server.calls[1];
    assert.equal(reset.headers.get("X-Session-ID"), old.token);
    assert.deepEqual(reset.body, { reason: "expired" });
    assert.notEqual(id, old.id);
    assert.equal(server.sessions.get(id).previous_session_id, old.id);
    assert.equal(storage.getItem(STORAGE_KEY), server.tokenOf(id));
    assert.equal(storage.getItem(PUBLIC_ID_KEY), id);
    assert.deepEqual(resets, [
      { notice: RESET_NOTICE, previousSessionId: old.id, sessionId: id, reason: "expired" },
    ]);
    assert.deepEqual(sessions, [{ sessionId: id }]);
  });

  test("a session id stored by an older version is answered upgraded and reset", async () => {
    const legacy = server.legacyId();
    storage.setItem(STORAGE_KEY, legacy); // what the version before tokens stored there
    const client = makeClient();
    const resets = record(client, "reset");

    const id = await client.start();

    assert.deepEqual(server.routes(), [
      "POST /api/v1/session/validate",
      "POST /api/v1/session/reset",
    ]);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), legacy);
    assert.equal(server.calls[1].headers.get("X-Session-ID"), legacy);
    assert.deepEqual(server.calls[1].body, { reason: "upgraded" });
    assert.equal(storage.getItem(STORAGE_KEY), server.tokenOf(id));
    assert.equal(storage.getItem(PUBLIC_ID_KEY), id);
    assert.equal(client.sessionId, id);
    assert.deepEqual(resets, [
      { notice: RESET_NOTICE, previousSessionId: null, sessionId: id, reason: "upgraded" },
    ]);
  });

  test("a stored value that cannot be a token is replaced as tampered, never sent", async () => {
    const garbage = `tampered-${randomUUID()}\n`;
    storage.setItem(STORAGE_KEY, garbage);
    const client = makeClient();
    const resets = record(client, "reset");

    const id = await client.start();

    assert.deepEqual(server.routes(), ["POST /api/v1/session/reset"]);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), null);
    assert.deepEqual(server.calls[0].body, { reason: "tampered" });
    assert.equal(storage.getItem(STORAGE_KEY), server.tokenOf(id));
    assert.deepEqual(resets, [
      { notice: RESET_NOTICE, previousSessionId: null, sessionId: id, reason: "tampered" },
    ]);
  });

  test("an answer without a token is unexpected_response, and nothing is stored", async () => {
    const client = makeClient();
    server.once("POST /api/v1/sessions", () => server.json(201, { id: randomUUID() }));

    const error = await rejection(client.start());

    assert.equal(error.code, "unexpected_response");
    assert.equal(storage.getItem(STORAGE_KEY), null);
    assert.equal(client.sessionId, null);
  });
});

describe("one reset however many ask", () => {
  test("two concurrent ensureSession calls on an invalid token: one validate, one reset", async () => {
    const old = server.session("reset");
    storage.setItem(STORAGE_KEY, old.token);
    const client = makeClient();
    const resets = record(client, "reset");

    const [first, second] = await Promise.all([client.ensureSession(), client.ensureSession()]);

    assert.equal(first, second);
    assert.equal(server.count("POST /api/v1/session/validate"), 1);
    assert.equal(server.count("POST /api/v1/session/reset"), 1);
    assert.equal(resets.length, 1);
    assert.equal(resets[0].reason, "reset");
  });

  test("two holder calls answered 401 at once share one reset", async () => {
    const old = server.session();
    storage.setItem(STORAGE_KEY, old.token);
    const client = makeClient();
    await client.start();
    server.sessions.get(old.id).status = "expired";

    const [session, files] = await Promise.all([client.getSession(), client.listFiles()]);

    assert.equal(server.count("POST /api/v1/session/reset"), 1);
    assert.equal(server.count("POST /api/v1/session/validate"), 1); // the one of start()
    assert.equal(session.id, client.sessionId);
    assert.deepEqual(files, []);
  });

  for (const locks of ["navigator.locks", "no navigator.locks"]) {
    test(`two tabs on the same invalid token reset once (${locks})`, async () => {
      const fakeLocks = new FakeLocks();
      if (locks === "navigator.locks") setGlobal("navigator", { locks: fakeLocks });
      else setGlobal("navigator", {});
      const old = server.session("expired");
      storage.setItem(STORAGE_KEY, old.token); // both tabs see the same localStorage
      const tabA = makeClient();
      const tabB = makeClient();
      const resetsA = record(tabA, "reset");
      const resetsB = record(tabB, "reset");

      const [a, b] = await Promise.all([tabA.ensureSession(), tabB.ensureSession()]);

      assert.equal(a, b);
      assert.equal(tabA.sessionId, a);
      assert.equal(tabB.sessionId, a);
      const fresh = server.tokenOf(a);
      assert.equal(storage.getItem(STORAGE_KEY), fresh);
      assert.equal(server.count("POST /api/v1/session/reset"), 1);
      // The tab that waited for the lock validated the other tab's new token instead.
      const validated = server.calls
        .filter((call) => call.route === "POST /api/v1/session/validate")
        .map((call) => call.headers.get("X-Session-ID"));
      assert.deepEqual(validated, [old.token, old.token, fresh]);
      assert.equal(resetsA.length + resetsB.length, 1);
      if (locks === "navigator.locks") {
        assert.deepEqual(fakeLocks.requests, ["session-service:reset", "session-service:reset"]);
      }
    });
  }

  test("reset() replaces the session on request and tells why", async () => {
    const client = makeClient();
    const old = await client.start();
    const oldToken = storage.getItem(STORAGE_KEY);
    const resets = record(client, "reset");

    const id = await client.reset("user_requested");

    const call = server.calls.at(-1);
    assert.equal(call.route, "POST /api/v1/session/reset");
    assert.equal(call.headers.get("X-Session-ID"), oldToken);
    assert.deepEqual(call.body, { reason: "user_requested" });
    assert.notEqual(id, old);
    assert.equal(client.sessionId, id);
    assert.equal(storage.getItem(STORAGE_KEY), server.tokenOf(id));
    assert.deepEqual(resets, [
      { notice: RESET_NOTICE, previousSessionId: old, sessionId: id, reason: "user_requested" },
    ]);
  });

  test("a reset answered 409 token_replaced takes the token another tab stored", async () => {
    const client = makeClient();
    const id = await client.start();
    const token = storage.getItem(STORAGE_KEY);
    const resets = record(client, "reset");
    let rotated;
    server.once("POST /api/v1/session/reset", () => {
      rotated = server.rotate(token); // another tab gave details meanwhile...
      storage.setItem(STORAGE_KEY, rotated); // ...and stored the new token
      return server.problem(409, "token_replaced");
    });

    assert.equal(await client.reset("user_requested"), id);

    assert.deepEqual(server.routes().slice(1), [
      "POST /api/v1/session/reset",
      "POST /api/v1/session/validate",
    ]);
    assert.equal(server.calls.at(-1).headers.get("X-Session-ID"), rotated);
    assert.equal(storage.getItem(STORAGE_KEY), rotated);
    assert.deepEqual(resets, []);
  });

  test("a reset answered 409 with nothing newer stored resets once more without the token", async () => {
    const client = makeClient();
    await client.start();
    const token = storage.getItem(STORAGE_KEY);
    const resets = record(client, "reset");
    server.once("POST /api/v1/session/reset", () => server.problem(409, "token_replaced"));

    const id = await client.reset("user_requested");

    const resetCalls = server.calls.filter((call) => call.route === "POST /api/v1/session/reset");
    assert.deepEqual(
      resetCalls.map((call) => call.headers.get("X-Session-ID")),
      [token, null],
    );
    assert.equal(resets.length, 1);
    assert.equal(client.sessionId, id);

    const conflict = () => server.problem(409, "token_replaced");
    server.once("POST /api/v1/session/reset", conflict);
    server.once("POST /api/v1/session/reset", conflict);
    const error = await rejection(client.reset("user_requested"));
    assert.equal(error.code, "token_replaced");
    assert.equal(error.userMessage, messageFor("token_replaced"));
    assert.equal(server.count("POST /api/v1/session/reset"), 4);
  });
});

describe("holder calls", () => {
  test("a 401 session_invalid resets with its reason and retries the call once", async () => {
    const client = makeClient();
    const old = await client.start();
    const oldToken = storage.getItem(STORAGE_KEY);
    server.sessions.get(old).status = "expired";
    const resets = record(client, "reset");
    server.calls.length = 0;

    const session = await client.getSession();

    assert.deepEqual(server.routes(), [
      "GET /api/v1/session",
      "POST /api/v1/session/reset",
      "GET /api/v1/session",
    ]);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), oldToken);
    assert.deepEqual(server.calls[1].body, { reason: "expired" });
    assert.equal(server.calls[2].headers.get("X-Session-ID"), server.tokenOf(session.id));
    assert.notEqual(session.id, old);
    assert.equal(client.sessionId, session.id);
    assert.equal(resets.length, 1);
    assert.equal(resets[0].notice, RESET_NOTICE);
  });

  test("a second 401 after the retry is the caller's error (no second reset)", async () => {
    const client = makeClient();
    await client.start();
    const invalid = () =>
      server.problem(401, "session_invalid", { reason: "not_found", action: "reset" });
    server.once("GET /api/v1/session/files", invalid);
    server.once("GET /api/v1/session/files", invalid);

    const error = await rejection(client.listFiles());

    assert.equal(error.code, "session_invalid");
    assert.equal(server.count("POST /api/v1/session/reset"), 1);
    assert.equal(server.count("GET /api/v1/session/files"), 2);
  });

  test("a call about one file of the old session resets but is not repeated", async () => {
    const client = makeClient();
    const old = await client.start();
    server.sessions.get(old).status = "reset";
    const resets = record(client, "reset");

    const error = await rejection(client.deleteFile(randomUUID()));

    assert.equal(error.code, "session_invalid");
    assert.equal(error.userMessage, messageFor("session_invalid"));
    assert.equal(server.calls.filter((call) => call.route.startsWith("DELETE")).length, 1);
    assert.equal(resets.length, 1);
    assert.equal(resets[0].reason, "reset");
  });

  test("without a token yet, a holder call establishes the session first", async () => {
    const client = makeClient();

    const session = await client.getSession();

    assert.deepEqual(server.routes(), ["POST /api/v1/sessions", "GET /api/v1/session"]);
    assert.equal(session.id, client.sessionId);
  });

  test("details, files, download URL and export", async () => {
    const client = makeClient();
    await client.start();

    const session = await client.submitDetails({
      name: "Ada Lovelace",
      email: "ada@example.com",
      consent: true,
    });
    assert.equal(session.status, "pending_verification");
    assert.equal(session.id, client.sessionId);
    assert.ok(!Object.hasOwn(session, "token"), "the resolved session carries no token");
    const put = server.calls.at(-1);
    assert.equal(put.route, "PUT /api/v1/session/details");
    assert.deepEqual(put.body, {
      name: "Ada Lovelace",
      email: "ada@example.com",
      consent_user_data: true,
    });

    const declined = await rejection(
      client.submitDetails({ name: "Ada", email: "ada@example.com", consent: false }),
    );
    assert.equal(declined.code, "validation_error");
    assert.equal(declined.status, 422);

    const file = await client.uploadFile(new File(["%PDF-1.7 x"], "a.pdf"));
    assert.deepEqual(
      (await client.listFiles()).map((each) => each.id),
      [file.id],
    );
    assert.equal(
      await client.downloadUrl(file.id),
      `${BASE}/api/v1/storage/downloads/token-${file.id}`,
    );
    const exported = await client.exportData();
    assert.equal(exported.format, "session-service.export.v2");
    assert.equal(exported.session.email, "ada@example.com");
    assert.equal(exported.files.length, 1);

    await client.deleteFile(file.id);
    assert.deepEqual(await client.listFiles(), []);
  });

  test("every request asks for JSON, sends the token (never the id) only in its header", async () => {
    const client = makeClient();
    const id = await client.start();
    await client.submitDetails({ name: "Ada", email: "ada@example.com", consent: true });
    await client.uploadFile(new File(["%PDF-1.7 x"], "a.pdf"));
    await client.getSession();
    await client.exportData();
    const fresh = await client.reset("user_requested");
    await client.erase();

    assert.ok(server.publicIds.has(id) && server.publicIds.has(fresh));
    for (const call of server.calls) {
      assert.equal(call.headers.get("Accept"), "application/json", call.route);
      if (call.rawBody !== undefined) {
        assert.equal(call.headers.get("Content-Type"), "application/json", call.route);
      }
      for (const token of server.issued) {
        assert.ok(!call.url.includes(token), `${call.route} carries a token in its URL`);
        const sent = call.rawBody ?? "";
        assert.ok(!sent.includes(token), `${call.route} carries a token in its body`);
      }
      const header = call.headers.get("X-Session-ID");
      if (call.route !== "POST /api/v1/sessions") {
        assert.ok(server.issued.has(header), `${call.route} sends no token it was given`);
      }
      assert.ok(!server.publicIds.has(header), `${call.route} sends a public id as X-Session-ID`);
    }
    // The storage never sees the token either.
    assert.ok(FakeXHR.instances.length > 0);
    for (const xhr of FakeXHR.instances) {
      assert.deepEqual(xhr.requestHeaders, {});
      for (const token of server.issued) {
        assert.ok(!xhr.url.includes(token));
        assert.ok(!xhr.entries.some(([, value]) => String(value).includes(token)));
      }
    }
  });
});

// ------------------------------------------------------------------------------------------
// Tokens: rotation, replacement by another tab, secrecy

describe("tokens", () => {
  /** A client started on a fresh session: `{client, id, token}`. */
  async function started(options) {
    const client = makeClient(options);
    const id = await client.start();
    return { client, id, token: storage.getItem(STORAGE_KEY) };
  }

  test("the token is stored and sent, the public id is what sessionId and events carry", async () => {
    const client = makeClient();
    const sessions = record(client, "session");

    const id = await client.start();
    await client.getSession();

    const token = storage.getItem(STORAGE_KEY);
    assert.match(token, UUID4);
    assert.notEqual(token, id);
    assert.equal(server.tokens.get(token), id);
    assert.equal(client.sessionId, id);
    assert.deepEqual(sessions, [{ sessionId: id }]);
    assert.equal(server.calls.at(-1).headers.get("X-Session-ID"), token);
  });

  test("details store the answer's new token at once, and the next call uses it", async () => {
    const { client, id, token } = await started();
    const sessions = record(client, "session");

    await client.submitDetails({ name: "Ada", email: "ada@example.com", consent: true });

    const rotated = server.tokenOf(id);
    assert.notEqual(rotated, token);
    assert.equal(server.ended.get(token), "rotated");
    assert.equal(storage.getItem(STORAGE_KEY), rotated);
    assert.equal(storage.getItem(PUBLIC_ID_KEY), id);
    assert.equal(client.sessionId, id);
    assert.deepEqual(sessions, [], "a rotated token is the same session: no session event");

    server.calls.length = 0;
    await client.getSession();
    await client.ensureSession();
    assert.deepEqual(
      server.calls.map((call) => call.headers.get("X-Session-ID")),
      [rotated, rotated],
    );
  });

  test("another tab reading storage right after the details answer finds the new token", async () => {
    const { client, id } = await started();
    const tabB = makeClient(); // same storage: another tab
    let seenByB;
    const originalSet = storage.setItem.bind(storage);
    storage.setItem = (key, value) => {
      originalSet(key, value);
      if (key === STORAGE_KEY) seenByB = tabB.ensureSession(); // a storage event would do this
    };

    await client.submitDetails({ name: "Ada", email: "ada@example.com", consent: true });
    storage.setItem = originalSet;

    assert.equal(await seenByB, id);
    assert.equal(tabB.sessionId, id);
    assert.equal(server.count("POST /api/v1/session/reset"), 0);
  });

  test("a call answered rotated while details are in flight waits for their new token", async () => {
    const { client, id, token } = await started();
    const resets = record(client, "reset");
    let release;
    const gate = new Promise((resolve) => {
      release = resolve;
    });
    let fresh;
    server.once("PUT /api/v1/session/details", async () => {
      // The server rotates at once; its answer is slow to arrive.
      const session = server.sessions.get(id);
      Object.assign(session, { name: "Ada", email: "ada@example.com" });
      fresh = server.rotate(token);
      await gate;
      return server.json(200, { ...session, token: fresh });
    });
    const details = client.submitDetails({ name: "Ada", email: "ada@example.com", consent: true });
    await until(() => fresh !== undefined);

    const reading = client.getSession(); // still sends the old token: 401 rotated
    await until(() => server.count("GET /api/v1/session") === 1);
    for (let i = 0; i < 5; i += 1) await tick();
    release();
    const [session] = await Promise.all([reading, details]);

    assert.equal(session.id, id);
    assert.deepEqual(
      server.calls.slice(-3).map((call) => [call.route, call.headers.get("X-Session-ID")]),
      [
        ["PUT /api/v1/session/details", token],
        ["GET /api/v1/session", token],
        ["GET /api/v1/session", fresh],
      ],
    );
    assert.deepEqual(resets, []);
    assert.equal(storage.getItem(STORAGE_KEY), fresh);
  });

  test("details answered 409 token_replaced are sent again with the newer stored token", async () => {
    const { client, id, token } = await started();
    let rotated;
    server.once("PUT /api/v1/session/details", () => {
      rotated = server.rotate(token); // another tab's details won
      storage.setItem(STORAGE_KEY, rotated);
      return server.problem(409, "token_replaced");
    });

    const session = await client.submitDetails({
      name: "Ada",
      email: "ada@example.com",
      consent: true,
    });

    assert.equal(session.id, id);
    const puts = server.calls.filter((call) => call.route === "PUT /api/v1/session/details");
    assert.deepEqual(
      puts.map((call) => call.headers.get("X-Session-ID")),
      [token, rotated],
    );
    const newest = server.tokenOf(id);
    assert.ok(![token, rotated].includes(newest));
    assert.equal(storage.getItem(STORAGE_KEY), newest);
    assert.equal(server.count("POST /api/v1/session/reset"), 0);
    assert.equal(server.count("POST /api/v1/session/validate"), 0);
  });

  test("rotated, with another token in storage: it is taken and the call repeated once", async () => {
    const { client, id, token } = await started();
    const sessions = record(client, "session");
    const resets = record(client, "reset");
    const rotated = server.rotate(token); // another tab gave details...
    storage.setItem(STORAGE_KEY, rotated); // ...and stored the new token (no storage event here)
    server.calls.length = 0;

    const session = await client.getSession();

    assert.deepEqual(server.routes(), ["GET /api/v1/session", "GET /api/v1/session"]);
    assert.deepEqual(
      server.calls.map((call) => call.headers.get("X-Session-ID")),
      [token, rotated],
    );
    assert.equal(session.id, id);
    assert.equal(client.sessionId, id);
    assert.deepEqual(resets, []);
    assert.deepEqual(sessions, []);
    await client.listFiles();
    assert.equal(server.calls.at(-1).headers.get("X-Session-ID"), rotated);
  });

  test("rotated, with the same token in storage: a reset with reason rotated", async () => {
    const { client, id, token } = await started();
    const resets = record(client, "reset");
    server.rotate(token); // a details answer that never reached this browser
    server.calls.length = 0;

    const session = await client.getSession();

    // The rotated token gets no second session (409 token_replaced): the reset that follows
    // presents none.
    assert.deepEqual(server.routes(), [
      "GET /api/v1/session",
      "POST /api/v1/session/reset",
      "POST /api/v1/session/reset",
      "GET /api/v1/session",
    ]);
    assert.equal(server.calls[1].headers.get("X-Session-ID"), token);
    assert.equal(server.calls[2].headers.get("X-Session-ID"), null);
    assert.deepEqual(server.calls[2].body, { reason: "rotated" });
    assert.notEqual(session.id, id);
    assert.deepEqual(resets, [
      { notice: RESET_NOTICE, previousSessionId: id, sessionId: session.id, reason: "rotated" },
    ]);
    assert.equal(storage.getItem(STORAGE_KEY), server.tokenOf(session.id));
  });

  test("validate answering rotated takes the token another tab stored, else resets", async () => {
    const { token } = await started();
    const rotated = server.rotate(token);
    // Tab B validates the old token while tab A's details answer is being stored.
    const tabB = makeClient();
    server.once("POST /api/v1/session/validate", () => {
      storage.setItem(STORAGE_KEY, rotated);
      return server.json(200, { valid: false, reason: "rotated", action: "reset" });
    });
    const resets = record(tabB, "reset");

    const id = await tabB.start();

    assert.equal(server.tokens.get(rotated), id);
    assert.equal(tabB.sessionId, id);
    assert.deepEqual(resets, []);
    assert.equal(server.calls.at(-1).headers.get("X-Session-ID"), rotated);

    // No other token: a reset, with reason rotated.
    server.rotate(rotated);
    const tabC = makeClient();
    const resetsC = record(tabC, "reset");
    const fresh = await tabC.start();
    assert.notEqual(fresh, id);
    assert.equal(resetsC.length, 1);
    assert.equal(resetsC[0].reason, "rotated");
  });

  test("a 409 token_replaced with a newer token stored takes it and repeats once", async () => {
    const { client, id, token } = await started();
    const resets = record(client, "reset");
    let rotated;
    server.once("GET /api/v1/session/export", () => {
      rotated = server.rotate(token); // the other tab's details won the race...
      storage.setItem(STORAGE_KEY, rotated);
      return server.problem(409, "token_replaced");
    });
    server.calls.length = 0;

    const exported = await client.exportData();

    assert.equal(exported.session.id, id);
    assert.deepEqual(
      server.calls.map((call) => [call.route, call.headers.get("X-Session-ID")]),
      [
        ["GET /api/v1/session/export", token],
        ["GET /api/v1/session/export", rotated],
      ],
    );
    assert.deepEqual(resets, []);
  });

  test("a 409 token_replaced with nothing newer stored revalidates, then resets", async () => {
    const { client, id, token } = await started();
    const resets = record(client, "reset");
    server.once("GET /api/v1/session", () => {
      server.rotate(token);
      return server.problem(409, "token_replaced");
    });
    server.calls.length = 0;

    const session = await client.getSession();

    assert.deepEqual(server.routes(), [
      "GET /api/v1/session",
      "POST /api/v1/session/validate",
      "POST /api/v1/session/reset",
      "POST /api/v1/session/reset",
      "GET /api/v1/session",
    ]);
    assert.equal(server.calls[1].headers.get("X-Session-ID"), token);
    assert.equal(server.calls[3].headers.get("X-Session-ID"), null);
    assert.deepEqual(server.calls[3].body, { reason: "rotated" });
    assert.notEqual(session.id, id);
    assert.equal(resets.length, 1);
    assert.equal(resets[0].previousSessionId, id);
  });

  test("a call about one file repeats after a rotation (same session), not after a reset", async () => {
    const { client, token } = await started();
    const file = await client.uploadFile(new File(["%PDF-1.7 x"], "a.pdf"));
    const current = storage.getItem(STORAGE_KEY);
    assert.equal(current, token);
    const rotated = server.rotate(current);
    storage.setItem(STORAGE_KEY, rotated);

    const url = await client.downloadUrl(file.id);

    assert.equal(url, `${BASE}/api/v1/storage/downloads/token-${file.id}`);
    assert.equal(server.count(`GET /api/v1/session/files/${file.id}/download`), 2);
    assert.equal(server.count("POST /api/v1/session/reset"), 0);
  });

  test("replacements never loop: rotated answers without end fail after three tries", async () => {
    const { client, token } = await started();
    const other = server.session();
    storage.setItem(STORAGE_KEY, other.token);
    const rotated = () =>
      server.problem(401, "session_invalid", { reason: "rotated", action: "reset" });
    for (let i = 0; i < 3; i += 1) server.once("GET /api/v1/session", rotated);
    server.calls.length = 0;

    const error = await rejection(client.getSession());

    assert.equal(error.code, "session_invalid");
    assert.equal(server.count("GET /api/v1/session"), 3);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), token);
    assert.equal(server.calls[1].headers.get("X-Session-ID"), other.token);
    assert.equal(server.count("POST /api/v1/session/reset"), 1);
  });

  test("erase follows a token another tab rotated, so the right session is erased", async () => {
    const { client, id, token } = await started();
    const rotated = server.rotate(token);
    storage.setItem(STORAGE_KEY, rotated);

    await client.erase();

    assert.ok(!server.sessions.has(id));
    assert.deepEqual(
      server.calls
        .filter((call) => call.route === "DELETE /api/v1/session")
        .map((call) => call.headers.get("X-Session-ID")),
      [token, rotated],
    );
    assert.equal(storage.getItem(STORAGE_KEY), null);
    assert.equal(storage.getItem(PUBLIC_ID_KEY), null);
    assert.equal(client.sessionId, null);
  });

  test("no event, result or sessionId ever carries a token", async () => {
    const win = new EventTarget();
    setGlobal("window", win);
    const client = makeClient();
    const seen = [];
    for (const type of ["session", "reset"]) {
      client.addEventListener(type, (event) => seen.push({ type, detail: event.detail }));
    }
    const results = [];
    const keep = async (promise) => {
      const value = await promise;
      results.push(value, client.sessionId);
      return value;
    };

    const id = await keep(client.start());
    await keep(client.submitDetails({ name: "Ada", email: "ada@example.com", consent: true }));
    await keep(client.getSession());
    await keep(client.exportData());
    // Another tab rotates the token and this one follows.
    const rotated = server.rotate(storage.getItem(STORAGE_KEY));
    storage.setItem(STORAGE_KEY, rotated);
    const changed = { key: STORAGE_KEY, newValue: rotated, storageArea: storage };
    win.dispatchEvent(Object.assign(new Event("storage"), changed));
    await keep(client.ensureSession());
    server.sessions.get(id).status = "expired";
    await keep(client.getSession());
    await keep(client.reset("user_requested"));
    await keep(client.erase());
    await keep(client.ensureSession());

    assert.ok(seen.some((event) => event.type === "reset"));
    const published = JSON.stringify({ seen, results });
    assert.ok(server.issued.size >= 5);
    for (const token of server.issued) {
      assert.ok(!published.includes(token), "a token was published");
    }
    for (const { detail } of seen) {
      for (const value of Object.values(detail)) {
        if (typeof value === "string" && UUID4.test(value)) {
          assert.ok(server.publicIds.has(value), "an event id is a public id");
        }
      }
    }
  });
});

// ------------------------------------------------------------------------------------------
// Retries

describe("retries", () => {
  test("429 waits Retry-After and retries, then succeeds", async () => {
    const delays = [];
    const client = makeClient({ sleep: async (ms) => delays.push(ms) });
    const limited = () =>
      server.problem(429, "rate_limited", { retry_after: 2 }, { "Retry-After": "2" });
    server.once("POST /api/v1/sessions", limited);
    server.once("POST /api/v1/sessions", limited);

    const id = await client.start();

    assert.deepEqual(delays, [2000, 2000]);
    assert.equal(server.count("POST /api/v1/sessions"), 3);
    assert.equal(storage.getItem(STORAGE_KEY), server.tokenOf(id));
  });

  test("a wait longer than maxWaitMs is not sat out: the 429 rejects at once with retryAt", async () => {
    const delays = [];
    const client = makeClient({ sleep: async (ms) => delays.push(ms) });
    server.once("POST /api/v1/sessions", () =>
      server.problem(429, "rate_limited", {}, { "Retry-After": "120", "X-Request-ID": "rl-1" }),
    );
    const before = Date.now();

    const error = await rejection(client.start());

    assert.deepEqual(delays, []);
    assert.equal(server.count("POST /api/v1/sessions"), 1);
    assert.equal(error.code, "rate_limited");
    assert.equal(error.status, 429);
    assert.equal(error.requestId, "rl-1");
    assert.equal(error.userMessage, messageFor("rate_limited"));
    assert.ok(error.retryAt >= before + 120_000 && error.retryAt <= Date.now() + 120_000);
  });

  test("retries stop at maxRetries, and the error says when to try again", async () => {
    const delays = [];
    const client = makeClient({ maxRetries: 2, sleep: async (ms) => delays.push(ms) });
    for (let i = 0; i < 3; i += 1) {
      server.once("POST /api/v1/sessions", () =>
        server.problem(429, "rate_limited", {}, { "Retry-After": "5", "X-Request-ID": `rl-${i}` }),
      );
    }

    const error = await rejection(client.start());

    assert.deepEqual(delays, [5000, 5000]);
    assert.equal(error.code, "rate_limited");
    assert.equal(error.requestId, "rl-2");
    assert.ok(error.retryAt > Date.now() + 4000);
  });

  test("each wait is announced: `waiting` with its reason and retryAt", async () => {
    const client = makeClient({ retryBaseMs: 100 });
    const waits = record(client, "waiting");
    server.once("POST /api/v1/sessions", () =>
      server.problem(429, "rate_limited", {}, { "Retry-After": "7" }),
    );
    server.once("POST /api/v1/sessions", () => new TypeError("fetch failed"));
    const before = Date.now();

    await client.start();

    assert.deepEqual(
      waits.map(({ reason, delayMs, code }) => [reason, delayMs, code]),
      [
        ["rate_limited", 7000, "rate_limited"],
        ["unavailable", 200, "cors_or_network"],
      ],
    );
    assert.ok(waits[0].retryAt >= before + 7000 && waits[0].retryAt <= Date.now() + 7000);
  });

  test("no answer: cors_or_network, naming both causes, after backing off", async () => {
    const delays = [];
    const client = makeClient({ retryBaseMs: 500, sleep: async (ms) => delays.push(ms) });
    const down = () => new TypeError("Failed to fetch");
    for (let i = 0; i < 4; i += 1) server.once("POST /api/v1/sessions", down);

    const error = await rejection(client.start());

    assert.ok(error instanceof SessionServiceError);
    assert.equal(error.code, "cors_or_network");
    assert.match(error.message, /network/);
    assert.match(error.message, /CORS_ORIGINS/);
    assert.equal(error.status, 0);
    assert.equal(error.requestId, null);
    assert.equal(error.userMessage, messageFor("cors_or_network"));
    assert.ok(error.cause instanceof TypeError);
    assert.deepEqual(delays, [500, 1000, 2000]);
    assert.equal(server.count("POST /api/v1/sessions"), 4);
    assert.equal(client.sessionId, null);
  });

  test("the backoff is capped at 10 s and jittered between half and all of it", async () => {
    const delays = [];
    const client = makeClient({ retryBaseMs: 4000, maxRetries: 3, maxWaitMs: 60_000, sleep: async (ms) => delays.push(ms) });
    for (let i = 0; i < 4; i += 1) server.once("POST /api/v1/sessions", () => new TypeError("x"));
    const random = Math.random;
    const draws = [0, 0.5, 0.9999999];
    Math.random = () => draws.shift();
    try {
      await rejection(client.start());
    } finally {
      Math.random = random;
    }
    assert.deepEqual(delays, [2000, 6000, 10_000]);
  });

  test("every repeat of a create carries the same Idempotency-Key", async () => {
    const client = makeClient({ retryBaseMs: 10 });
    server.once("POST /api/v1/sessions", () => new TypeError("fetch failed"));
    server.once("POST /api/v1/sessions", () => server.problem(503, "database_unavailable"));

    await client.start();
    await client.reset();

    const keys = server.calls
      .filter((call) => call.route === "POST /api/v1/sessions")
      .map((call) => call.headers.get("Idempotency-Key"));
    assert.equal(keys.length, 3);
    assert.match(keys[0], UUID4);
    assert.equal(new Set(keys).size, 1);
    const reset = server.calls.find((call) => call.route === "POST /api/v1/session/reset");
    assert.match(reset.headers.get("Idempotency-Key"), UUID4);
    assert.notEqual(reset.headers.get("Idempotency-Key"), keys[0]);
    const validate = server.calls.find((call) => call.route === "POST /api/v1/session/validate");
    assert.equal(validate, undefined);
  });

  test("a gateway's 502 with an HTML page is retried for a read: service_unavailable", async () => {
    const client = makeClient();
    await client.start();
    const page = () =>
      new Response("<html><body>Bad Gateway</body></html>", {
        status: 502,
        headers: { "Content-Type": "text/html" },
      });
    for (let i = 0; i < 4; i += 1) server.once("GET /api/v1/session/files", page);

    const error = await rejection(client.listFiles());

    assert.equal(error.code, "service_unavailable");
    assert.equal(error.status, 502);
    assert.equal(error.userMessage, messageFor("service_unavailable"));
    assert.equal(server.count("GET /api/v1/session/files"), 4);
  });

  test("a 503 with Retry-After is waited out, then the read succeeds", async () => {
    const delays = [];
    const client = makeClient({ sleep: async (ms) => delays.push(ms) });
    await client.start();
    server.once("GET /api/v1/session", () =>
      server.problem(503, "database_unavailable", {}, { "Retry-After": "2" }),
    );

    const session = await client.getSession();

    assert.equal(session.id, client.sessionId);
    assert.deepEqual(delays, [2000]);
  });

  test("a 500 is a fault, not an outage: not retried", async () => {
    const client = makeClient();
    await client.start();
    server.once("GET /api/v1/session/files", () => server.problem(500, "internal_error"));

    const error = await rejection(client.listFiles());

    assert.equal(error.code, "internal_error");
    assert.equal(server.count("GET /api/v1/session/files"), 1);
  });

  test("a network error that clears up is retried transparently", async () => {
    const delays = [];
    const client = makeClient({ retryBaseMs: 10, sleep: async (ms) => delays.push(ms) });
    server.once("POST /api/v1/sessions", () => new TypeError("fetch failed"));
    server.once("POST /api/v1/sessions", () => new TypeError("fetch failed"));

    const id = await client.start();

    assert.deepEqual(delays, [10, 20]);
    assert.equal(client.sessionId, id);
  });

  test("the default backoff really waits (real timers)", async () => {
    const client = new SessionClient({
      baseUrl: BASE,
      storage,
      fetch: server.fetch,
      retryBaseMs: 20,
    });
    server.once("POST /api/v1/sessions", () => new TypeError("fetch failed"));
    const started = performance.now();

    await client.start();

    assert.ok(performance.now() - started >= 19);
  });

  test("a call that must not repeat is not retried after a network error", async () => {
    const client = makeClient();
    await client.start();
    server.once("DELETE /api/v1/session/files/abc", () => new TypeError("fetch failed"));

    const error = await rejection(client.deleteFile("abc"));

    assert.equal(error.code, "cors_or_network");
    assert.equal(server.count("DELETE /api/v1/session/files/abc"), 1);
  });
});

// ------------------------------------------------------------------------------------------
// Cancel and timeout

/** A fetch that never answers but gives up when its signal aborts (as a browser's does). */
function hanging(call) {
  return new Promise((_resolve, reject) => {
    const abort = () => reject(new DOMException("aborted", "AbortError"));
    if (call.signal.aborted) abort();
    else call.signal.addEventListener("abort", abort);
  });
}

describe("cancel and timeout", () => {
  test("every request carries a signal; a hung one times out and is retried, then `timeout`", async () => {
    const client = makeClient({ timeoutMs: 20, maxRetries: 1 });
    server.once("POST /api/v1/sessions", hanging);
    server.once("POST /api/v1/sessions", hanging);

    const error = await rejection(client.start());

    assert.equal(error.code, "timeout");
    assert.match(error.message, /20 ms/);
    assert.equal(error.userMessage, messageFor("timeout"));
    assert.equal(server.count("POST /api/v1/sessions"), 2);
  });

  test("a per-call timeout overrides the client's", async () => {
    const client = makeClient({ timeoutMs: 60_000, maxRetries: 0 });
    await client.start();
    server.once("GET /api/v1/session", hanging);
    const started = performance.now();

    const error = await rejection(client.getSession({ timeout: 30 }));

    assert.equal(error.code, "timeout");
    assert.ok(performance.now() - started < 1000);
  });

  test("a cancel during a rate-limit wait rejects at once and sends nothing more", async () => {
    const client = makeClient({ sleep: () => new Promise(() => {}) }); // a wait that never ends
    await client.start();
    const controller = new AbortController();
    server.once("GET /api/v1/session/files", () =>
      server.problem(429, "rate_limited", {}, { "Retry-After": "20" }),
    );
    const waiting = new Promise((resolve) => client.addEventListener("waiting", resolve));
    const listing = client.listFiles({ signal: controller.signal });
    await waiting;

    controller.abort();
    const error = await rejection(listing);

    assert.equal(error.code, "aborted");
    assert.equal(error.userMessage, messageFor("aborted"));
    await tick();
    assert.equal(server.count("GET /api/v1/session/files"), 1);
  });

  test("an aborted signal sends nothing; an abort mid-request rejects with aborted", async () => {
    const client = makeClient();
    await client.start();
    const calls = server.calls.length;

    const done = new AbortController();
    done.abort();
    const early = await rejection(client.getSession({ signal: done.signal }));
    assert.equal(early.code, "aborted");
    assert.equal(server.calls.length, calls);

    server.once("GET /api/v1/session", hanging);
    const controller = new AbortController();
    const pending = client.getSession({ signal: controller.signal });
    await until(() => server.calls.length === calls + 1);
    controller.abort();
    assert.equal((await rejection(pending)).code, "aborted");
    assert.ok(server.calls.at(-1).signal.aborted, "the request itself was aborted");
  });

  test("one caller's cancel does not cancel the start another caller shares", async () => {
    const client = makeClient();
    const controller = new AbortController();
    const first = client.start({ signal: controller.signal });
    const second = client.start();
    controller.abort();

    assert.equal((await rejection(first)).code, "aborted");
    const id = await second;
    assert.equal(client.sessionId, id);
    assert.equal(server.count("POST /api/v1/sessions"), 1);
  });

  test("options are checked before anything is sent", async () => {
    const client = makeClient();
    assert.throws(() => client.getSession({ timeout: -1 }), TypeError);
    assert.throws(() => client.listFiles({ signal: "stop" }), TypeError);
    assert.equal(server.calls.length, 0);
  });
});

// ------------------------------------------------------------------------------------------
// Storage and tabs

describe("storage", () => {
  test("a storage that throws falls back to memory silently", async () => {
    storage = new BrokenStorage();
    const client = makeClient();

    const id = await client.start();
    assert.equal(client.sessionId, id);
    assert.equal(await client.ensureSession(), id);

    assert.deepEqual(server.routes(), [
      "POST /api/v1/sessions",
      "POST /api/v1/session/validate",
    ]);
  });

  test("a storage that starts failing later keeps the token in memory", async () => {
    const client = makeClient();
    const id = await client.start();
    storage.getItem = () => {
      throw new Error("SecurityError");
    };
    storage.setItem = storage.getItem;

    assert.equal(await client.ensureSession(), id);
    const fresh = await client.reset("user_requested");
    assert.equal(await client.ensureSession(), fresh);
    assert.equal(server.count("POST /api/v1/sessions"), 1);
  });

  test("an unusable window.localStorage (it throws on access) means memory", async () => {
    Object.defineProperty(globalThis, "localStorage", {
      configurable: true,
      get() {
        throw new Error("SecurityError: access denied");
      },
    });
    saved.set("localStorage", undefined);
    const client = new SessionClient({ baseUrl: BASE, fetch: server.fetch });

    const id = await client.start();
    assert.equal(await client.ensureSession(), id);
  });

  test("without storage options or browser globals the module still works (Node)", async () => {
    const client = new SessionClient({ baseUrl: BASE, fetch: server.fetch });
    const id = await client.start();
    assert.equal(client.sessionId, id);
  });

  test("a storage event from another tab updates the session and says so", async () => {
    const win = new EventTarget();
    setGlobal("window", win);
    const client = makeClient();
    const id = await client.start();
    const sessions = record(client, "session");
    const other = server.session();
    const event = (key, newValue, storageArea = storage) =>
      Object.assign(new Event("storage"), { key, newValue, storageArea });

    // The other tab writes the token, then the public id; each write fires an event here.
    storage.setItem(STORAGE_KEY, other.token);
    win.dispatchEvent(event("unrelated", "x")); // other keys are ignored
    win.dispatchEvent(event(STORAGE_KEY, other.token, new MemoryStorage())); // other storages too
    assert.deepEqual(sessions, []);
    win.dispatchEvent(event(STORAGE_KEY, other.token));
    assert.equal(client.sessionId, id, "the public id is not written yet");
    storage.setItem(PUBLIC_ID_KEY, other.id);
    win.dispatchEvent(event(PUBLIC_ID_KEY, other.id));

    assert.equal(client.sessionId, other.id);
    assert.deepEqual(sessions, [{ sessionId: other.id }]);
    server.calls.length = 0;
    assert.equal(await client.ensureSession(), other.id);
    assert.deepEqual(server.routes(), ["POST /api/v1/session/validate"]);
    assert.equal(server.calls[0].headers.get("X-Session-ID"), other.token);

    // A rotation in the other tab changes the token only: followed, no session event.
    const rotated = server.rotate(other.token);
    storage.setItem(STORAGE_KEY, rotated);
    win.dispatchEvent(event(STORAGE_KEY, rotated));
    await client.getSession();
    assert.equal(server.calls.at(-1).headers.get("X-Session-ID"), rotated);
    assert.equal(server.count("GET /api/v1/session"), 1);
    assert.equal(sessions.length, 1);

    storage.removeItem(STORAGE_KEY);
    storage.removeItem(PUBLIC_ID_KEY);
    win.dispatchEvent(event(null, null)); // localStorage.clear() in the other tab
    assert.equal(client.sessionId, null);
    assert.deepEqual(sessions.at(-1), { sessionId: null });

    client.close();
    storage.setItem(STORAGE_KEY, other.token);
    storage.setItem(PUBLIC_ID_KEY, other.id);
    win.dispatchEvent(event(STORAGE_KEY, other.token));
    assert.equal(client.sessionId, null);
  });

  test("junk another tab writes is never sent: the next call starts afresh (tampered)", async () => {
    const win = new EventTarget();
    setGlobal("window", win);
    const client = makeClient();
    const id = await client.start();
    const resets = record(client, "reset");
    const junk = "\u2603-not-an-id";

    storage.setItem(STORAGE_KEY, junk);
    win.dispatchEvent(Object.assign(new Event("storage"), { key: STORAGE_KEY, storageArea: storage }));
    assert.equal(client.sessionId, null, "the junk is not taken as a session");
    const files = await client.listFiles();

    assert.deepEqual(files, []);
    const sent = server.calls.map((call) => call.headers.get("X-Session-ID"));
    assert.ok(!sent.includes(junk), "junk never goes out as a header");
    assert.deepEqual(resets.map((reset) => reset.reason), ["tampered"]);
    assert.notEqual(client.sessionId, id);
    assert.match(storage.getItem(STORAGE_KEY), UUID4);
  });
});

/** Reset the session of `token` elsewhere (another device, a support tool): not stored here. */
function resetElsewhere(token) {
  const id = server.tokens.get(token);
  server.sessions.get(id).status = "reset";
  server.tokens.delete(token);
  server.ended.set(token, "reset");
}

describe("erase", () => {
  test("erases on the server, forgets the session, and the next action starts afresh", async () => {
    const client = makeClient();
    const id = await client.start();
    const token = storage.getItem(STORAGE_KEY);
    const sessions = record(client, "session");
    const resets = record(client, "reset");

    await client.erase();

    const call = server.calls.at(-1);
    assert.equal(call.route, "DELETE /api/v1/session");
    assert.equal(call.headers.get("X-Session-ID"), token);
    assert.ok(!server.sessions.has(id));
    assert.equal(storage.getItem(STORAGE_KEY), null);
    assert.equal(storage.getItem(PUBLIC_ID_KEY), null);
    assert.equal(client.sessionId, null);
    assert.deepEqual(sessions, [{ sessionId: null }]);

    const fresh = await client.ensureSession();
    assert.notEqual(fresh, id);
    assert.equal(server.calls.at(-1).route, "POST /api/v1/sessions");
    assert.deepEqual(resets, []);
  });

  test("a session the service no longer knows has nothing left to erase: forgotten", async () => {
    const client = makeClient();
    const id = await client.start();
    server.sessions.delete(id);

    await client.erase();

    assert.equal(server.count("POST /api/v1/session/reset"), 0);
    assert.equal(client.sessionId, null);
    assert.equal(storage.getItem(STORAGE_KEY), null);
  });

  test("reset elsewhere: erase says the data belongs to a session it no longer holds", async () => {
    const client = makeClient();
    const id = await client.start();
    const token = storage.getItem(STORAGE_KEY);
    resetElsewhere(token);

    const error = await rejection(client.erase());

    assert.equal(error.code, "session_replaced");
    assert.equal(error.userMessage, messageFor("session_replaced"));
    assert.match(error.message, /no longer holds/);
    assert.equal(error.cause.code, "session_invalid");
    assert.ok(server.sessions.has(id), "nothing was erased");
    assert.equal(server.count("DELETE /api/v1/session"), 1);
    assert.equal(server.count("POST /api/v1/session/reset"), 0);
  });

  test("reset by another tab that stored the new token: the erasure uses it", async () => {
    const client = makeClient();
    await client.start();
    const token = storage.getItem(STORAGE_KEY);
    resetElsewhere(token);
    const replacement = server.session();
    storage.setItem(STORAGE_KEY, replacement.token); // the other tab's reset (no event here)

    await client.erase();

    const erasures = server.calls.filter((call) => call.route === "DELETE /api/v1/session");
    assert.deepEqual(
      erasures.map((call) => call.headers.get("X-Session-ID")),
      [token, replacement.token],
    );
    assert.ok(!server.sessions.has(replacement.id));
    assert.equal(storage.getItem(STORAGE_KEY), null);
  });

  test("an expired session is not reported erased: session_expired", async () => {
    const client = makeClient();
    const id = await client.start();
    server.sessions.get(id).status = "expired";

    const error = await rejection(client.erase());

    assert.equal(error.code, "session_expired");
    assert.match(error.message, /expired/);
  });
});

describe("exportData", () => {
  test("reset elsewhere: session_replaced, never the export of another session", async () => {
    const client = makeClient();
    await client.start();
    resetElsewhere(storage.getItem(STORAGE_KEY));

    const error = await rejection(client.exportData());

    assert.equal(error.code, "session_replaced");
    assert.equal(server.count("GET /api/v1/session/export"), 1, "not repeated on a new session");
  });

  test("a rotated token of the same session is followed: the export is that session's", async () => {
    const client = makeClient();
    const id = await client.start();
    const rotated = server.rotate(storage.getItem(STORAGE_KEY));
    storage.setItem(STORAGE_KEY, rotated);

    const exported = await client.exportData();

    assert.equal(exported.session.id, id);
  });
});

// ------------------------------------------------------------------------------------------
// Uploads

describe("uploadFile", () => {
  const pdf = () => new File(["%PDF-1.7 hello"], "report.pdf", { type: "application/pdf" });

  test("posts the slot's fields in order, then the file last, with progress, then completes", async () => {
    const client = makeClient();
    const id = await client.start();
    FakeXHR.storage = async (xhr) => {
      xhr.progress(5, 14);
      xhr.progress(14, 14);
      await server.receive(xhr);
      xhr.respond(204);
    };
    const progress = [];

    const file = await client.uploadFile(pdf(), {
      onProgress: (loaded, total) => progress.push([loaded, total]),
    });

    const routes = server.routes().slice(1);
    assert.deepEqual(routes, [
      "POST /api/v1/session/validate",
      "POST /api/v1/session/uploads",
      `POST /api/v1/session/files/${file.id}/complete`,
    ]);
    assert.deepEqual(server.calls[2].body, {
      name: "report.pdf",
      content_type: "application/pdf",
      size: 14,
    });
    const [xhr] = FakeXHR.instances;
    assert.equal(xhr.method, "POST");
    assert.equal(xhr.url, `${BASE}/api/v1/storage/uploads`);
    assert.deepEqual(
      xhr.entries.map(([name]) => name),
      ["key", "Content-Type", "policy", "x-amz-signature", "file"],
    );
    assert.equal(xhr.entries[0][1], `uploads/storage-id/${file.id}/report.pdf`);
    assert.equal(xhr.entries[1][1], "application/pdf");
    const sent = xhr.entries.at(-1)[1];
    assert.equal(sent.name, "report.pdf");
    assert.equal(await sent.text(), "%PDF-1.7 hello");
    assert.deepEqual(xhr.requestHeaders, {});
    assert.deepEqual(progress, [
      [5, 14],
      [14, 14],
    ]);
    assert.equal(file.status, "uploaded");
    assert.equal(file.stored_size, 14);
    assert.equal(server.calls.at(-1).headers.get("X-Session-ID"), server.tokenOf(id));
  });

  test("cancelling through the AbortSignal aborts the upload (aborted) and deletes its slot", async () => {
    const client = makeClient();
    await client.start();
    const controller = new AbortController();
    FakeXHR.storage = async (xhr) => {
      xhr.progress(3, 14);
      controller.abort();
    };

    const error = await rejection(
      client.uploadFile(pdf(), { signal: controller.signal, onProgress: () => {} }),
    );

    assert.ok(error instanceof SessionServiceError);
    assert.equal(error.code, "aborted");
    assert.equal(error.status, 0);
    assert.equal(error.userMessage, messageFor("aborted"));
    assert.equal(FakeXHR.instances[0].aborted, true);
    assert.ok(!server.routes().some((route) => route.endsWith("/complete")));
    const slot = server.calls.find((call) => call.route === "POST /api/v1/session/uploads");
    assert.match(slot.headers.get("Idempotency-Key"), UUID4);
    await until(() => server.files.size === 0); // the pending row went again
    assert.ok(server.routes().some((route) => route.startsWith("DELETE /api/v1/session/files/")));
  });

  test("a slot whose deletion could not be sent is deleted before the next upload", async () => {
    const deletes = () =>
      server.calls.filter((call) => call.route.startsWith("DELETE /api/v1/session/files/"));
    // The service is out of reach for the first delete (the one sent after the failure).
    let unreachable = true;
    const client = makeClient({
      fetch: async (input, init = {}) => {
        if (init.method === "DELETE" && unreachable) {
          unreachable = false;
          server.calls.push({ route: `DELETE ${new URL(String(input), BASE).pathname}` });
          throw new TypeError("fetch failed");
        }
        return server.fetch(input, init);
      },
    });
    await client.start();
    const working = FakeXHR.storage;
    FakeXHR.storage = async (xhr) => xhr.onerror();

    const failed = await rejection(client.uploadFile(pdf()));
    assert.equal(failed.code, "cors_or_network");
    await until(() => deletes().length === 1);
    assert.equal(server.files.size, 1, "still pending: its delete found no service");

    FakeXHR.storage = working;
    await client.uploadFile(pdf());

    assert.equal(deletes().length, 2);
    assert.equal(server.files.size, 1, "the abandoned slot went before the new one came");
    assert.equal([...server.files.values()][0].file.status, "uploaded");
  });

  test("an already aborted signal sends nothing", async () => {
    const client = makeClient();
    const controller = new AbortController();
    controller.abort();

    const error = await rejection(client.uploadFile(pdf(), { signal: controller.signal }));

    assert.equal(error.code, "aborted");
    assert.deepEqual(server.calls, []);
    assert.deepEqual(FakeXHR.instances, []);
  });

  test("a problem from the local storage endpoint rejects with its code", async () => {
    const client = makeClient();
    await client.start();
    FakeXHR.storage = async (xhr) =>
      xhr.respond(
        403,
        JSON.stringify({ code: "upload_expired", status: 403, request_id: "in-body" }),
        { "Content-Type": "application/problem+json", "X-Request-ID": "req-storage" },
      );

    const error = await rejection(client.uploadFile(pdf()));

    assert.equal(error.code, "upload_expired");
    assert.equal(error.status, 403);
    assert.equal(error.requestId, "req-storage");
    assert.equal(client.lastRequestId, "req-storage");
    assert.ok(!server.routes().some((route) => route.endsWith("/complete")));
  });

  test("S3's XML errors map to the service's codes", async () => {
    const client = makeClient();
    await client.start();
    const cases = [
      ["EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", "upload_too_large"],
      ["AccessDenied", "Invalid according to Policy: Policy expired.", "upload_expired"],
      ["AccessDenied", "Invalid according to Policy: Policy Condition failed", "upload_policy_violation"],
      ["InternalError", "We encountered an internal error.", "upload_failed"],
    ];
    for (const [code, message, expected] of cases) {
      FakeXHR.storage = async (xhr) =>
        xhr.respond(
          code === "InternalError" ? 500 : 400,
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
          { "Content-Type": "application/xml", "x-amz-request-id": "S3REQ" },
        );
      const error = await rejection(client.uploadFile(pdf()));
      assert.equal(error.code, expected, code);
      assert.equal(error.requestId, "S3REQ");
      assert.match(error.detail, new RegExp(code));
    }
  });

  test("storage out of reach is cors_or_network, naming the storage's CORS rules", async () => {
    const client = makeClient();
    await client.start();
    FakeXHR.storage = async (xhr) => xhr.onerror();

    const error = await rejection(client.uploadFile(pdf()));

    assert.equal(error.code, "cors_or_network");
    assert.match(error.message, /file storage gave no answer.*CORS/);
  });

  test("a file that fails the completion check rejects with upload_rejected", async () => {
    const client = makeClient();
    await client.start();
    const fake = new File(["PK\u0003\u0004 a zip"], "invoice.pdf", { type: "application/pdf" });

    const error = await rejection(client.uploadFile(fake));

    assert.equal(error.code, "upload_rejected");
    assert.equal(error.status, 422);
    assert.equal(error.problem.reason, "signature_mismatch");
    assert.equal(error.userMessage, messageFor("upload_rejected"));
    assert.match(error.requestId, /^req-\d+$/);
    assert.equal(client.lastRequestId, error.requestId);
  });

  test("a nameless, typeless Blob is declared as a PDF named upload", async () => {
    const client = makeClient();
    await client.start();

    await client.uploadFile(new Blob(["%PDF-1.4"]));

    const slot = server.calls.find((call) => call.route === "POST /api/v1/session/uploads");
    assert.deepEqual(slot.body, { name: "upload", content_type: "application/pdf", size: 8 });
  });

  test("an empty file or a non-file is refused before any request", async () => {
    const client = makeClient();
    assert.equal((await rejection(client.uploadFile(new Blob([])))).code, "upload_empty");
    await assert.rejects(client.uploadFile("report.pdf"), TypeError);
    assert.deepEqual(server.calls, []);
  });
});

// ------------------------------------------------------------------------------------------
// Messages and support ids

describe("messages and request ids", () => {
  test("messageFor maps codes and falls back to a generic message", () => {
    assert.equal(
      messageFor("rate_limited"),
      "Too many attempts. Please wait a moment and try again.",
    );
    assert.equal(
      messageFor("cors_or_network"),
      "The service could not be reached. Please check your connection and try again.",
    );
    const generic = messageFor("a_code_from_the_future");
    assert.equal(generic, "Something went wrong. Please try again.");
    for (const odd of [undefined, null, "", "toString", "__proto__", "constructor"]) {
      assert.equal(messageFor(odd), generic, String(odd));
    }
  });

  test("lastRequestId keeps the failing call's X-Request-ID", async () => {
    const client = makeClient();
    await client.start();
    assert.equal(client.lastRequestId, null);
    server.once("GET /api/v1/session", () =>
      server.problem(500, "internal_error", {}, { "X-Request-ID": "req-failed-42" }),
    );

    const error = await rejection(client.getSession());

    assert.equal(error.code, "internal_error");
    assert.equal(error.status, 500);
    assert.equal(error.requestId, "req-failed-42");
    assert.equal(error.detail, "internal_error");
    assert.equal(error.problem.code, "internal_error");
    assert.equal(client.lastRequestId, "req-failed-42");

    await client.getSession(); // a success does not erase it
    assert.equal(client.lastRequestId, "req-failed-42");
  });

  test("without the header, the problem's request_id is used", async () => {
    const client = makeClient({ maxRetries: 0 });
    await client.start();
    server.once(
      "GET /api/v1/session/export",
      () =>
        new Response(JSON.stringify({ code: "database_unavailable", request_id: "body-id" }), {
          status: 503,
          headers: { "Content-Type": "application/problem+json" },
        }),
    );

    const error = await rejection(client.exportData());

    assert.equal(error.code, "database_unavailable");
    assert.equal(error.requestId, "body-id");
    assert.equal(client.lastRequestId, "body-id");
  });

  test("an answer that is not a problem (a proxy's HTML page) is unexpected_response", async () => {
    const client = makeClient();
    await client.start();
    server.once(
      "GET /api/v1/session",
      () => new Response("<html>Request blocked</html>", { status: 400 }),
    );

    const error = await rejection(client.getSession());

    assert.equal(error.code, "unexpected_response");
    assert.equal(error.status, 400);
    assert.equal(error.problem, null);
    assert.equal(error.userMessage, messageFor("unexpected_response"));
  });
});
