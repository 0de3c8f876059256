// The module's public surface matches its TypeScript declarations, and its message tables
// are complete (`node --test tests/web/unit/`). The README's codes are compared with
// MESSAGES by tests/web/test_module.py.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import * as client from "../../../src/session_service/web/client/session-client.js";

const STATIC = new URL("../../../src/session_service/web/client/", import.meta.url);
const declarations = await readFile(new URL("session-client.d.ts", STATIC), "utf8");

/** The string literals of `export type <name> = "a" | "b" ...;` in the declarations. */
function unionOf(name) {
  const match = new RegExp(`export type ${name} =([^;]*);`).exec(declarations);
  assert.ok(match, `type ${name} is declared`);
  return [...match[1].matchAll(/"([^"]+)"/g)].map((literal) => literal[1]).sort();
}

/** Member names declared in `export declare class <name> ... { ... }` (methods, getters). */
function membersOf(name) {
  const start = declarations.indexOf(`export declare class ${name} `);
  assert.ok(start >= 0, `class ${name} is declared`);
  const body = declarations.slice(start, declarations.indexOf("\n}\n", start));
  const members = [...body.matchAll(/^ {2}(?:get |readonly )?(\w+)[(<:]/gm)].map((m) => m[1]);
  return [...new Set(members)].filter((member) => member !== "constructor");
}

test("the module exports exactly what the declarations declare", () => {
  const declared = [...declarations.matchAll(/^export declare (?:const|function|class) (\w+)/gm)]
    .map((match) => match[1])
    .sort();
  assert.deepEqual(Object.keys(client).sort(), declared);
});

test("every declared SessionClient member exists, with getters as getters", () => {
  const prototype = client.SessionClient.prototype;
  for (const member of membersOf("SessionClient")) {
    const descriptor =
      Object.getOwnPropertyDescriptor(prototype, member) ??
      Object.getOwnPropertyDescriptor(EventTarget.prototype, member);
    assert.ok(descriptor, `SessionClient.${member} is missing`);
    if (member === "sessionId" || member === "lastRequestId") {
      assert.equal(typeof descriptor.get, "function", `${member} is a getter`);
      assert.equal(descriptor.set, undefined, `${member} is read-only`);
    } else {
      assert.equal(typeof descriptor.value, "function", `${member} is a method`);
    }
  }
});

test("every declared EventStreamParser member exists, with getters as getters", () => {
  const prototype = client.EventStreamParser.prototype;
  const members = membersOf("EventStreamParser");
  assert.deepEqual(members.sort(), ["lastEventId", "push", "retry"]);
  for (const member of members) {
    const descriptor = Object.getOwnPropertyDescriptor(prototype, member);
    assert.ok(descriptor, `EventStreamParser.${member} is missing`);
    if (member === "push") assert.equal(typeof descriptor.value, "function");
    else assert.equal(typeof descriptor.get, "function", `${member} is a getter`);
  }
});

test("every declared SessionServiceError field is set", () => {
  const error = new client.SessionServiceError("rate_limited", {
    status: 429,
    requestId: "req-1",
    detail: "slow down",
    problem: { code: "rate_limited" },
  });
  for (const field of membersOf("SessionServiceError")) {
    assert.ok(Object.hasOwn(error, field), `SessionServiceError.${field} is not set`);
  }
  assert.ok(error instanceof Error);
  assert.equal(error.name, "SessionServiceError");
  assert.equal(error.userMessage, client.MESSAGES.rate_limited);
  const bare = new client.SessionServiceError("network_error");
  assert.deepEqual(
    [bare.status, bare.requestId, bare.detail, bare.problem],
    [0, null, null, null],
  );
});

test("MESSAGES and CLIENT_MESSAGES cover exactly the declared code unions", () => {
  assert.deepEqual(Object.keys(client.MESSAGES).sort(), unionOf("ServerErrorCode"));
  assert.deepEqual(Object.keys(client.CLIENT_MESSAGES).sort(), unionOf("ClientErrorCode"));
  const shared = Object.keys(client.CLIENT_MESSAGES).filter((code) =>
    Object.hasOwn(client.MESSAGES, code),
  );
  assert.deepEqual(shared, []);
});

test("messages are frozen, non-empty sentences, and messageFor returns them", () => {
  assert.ok(Object.isFrozen(client.MESSAGES));
  assert.ok(Object.isFrozen(client.CLIENT_MESSAGES));
  for (const table of [client.MESSAGES, client.CLIENT_MESSAGES]) {
    for (const [code, message] of Object.entries(table)) {
      assert.match(message, /^[A-Z].*\.$/, code);
      assert.ok(!message.includes(code), `${code}: the message should not show the raw code`);
      assert.equal(client.messageFor(code), message);
    }
  }
  assert.equal(client.messageFor("nope"), client.GENERIC_MESSAGE);
});

test("no declared public type carries the session token", () => {
  assert.doesNotMatch(declarations, /^\s+(?:readonly\s+)?token\??:/m);
});

test("the constants the page and other tabs rely on", () => {
  assert.equal(client.STORAGE_KEY, "session-service.session-id");
  assert.equal(client.PUBLIC_ID_KEY, "session-service.session-public-id");
  assert.equal(
    client.RESET_NOTICE,
    "Your session has been reset due to a technical issue. Please start again.",
  );
  assert.match(declarations, new RegExp(`STORAGE_KEY: "${client.STORAGE_KEY}"`));
  assert.match(declarations, new RegExp(`PUBLIC_ID_KEY: "${client.PUBLIC_ID_KEY}"`));
  assert.match(declarations, new RegExp(`RESET_NOTICE:\\s*"${client.RESET_NOTICE}"`));
});
