// What both unit test files need: the fake origin, a UUIDv4 pattern, waiting helpers and a
// localStorage over a Map. Importing it also pins the retry backoff's jitter (below).
import assert from "node:assert/strict";

export const BASE = "http://service.test";
export const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

// Retry backoff is jittered (0.5 to 1 times its delay): the tests see its upper bound.
Math.random = () => 0.9999999;

export const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

/** Wait (a bounded number of ticks) until `predicate()` holds. */
export async function until(predicate, what = "the awaited condition") {
  for (let i = 0; i < 500 && !predicate(); i += 1) await tick();
  assert.ok(predicate(), `${what} never held`);
}

/** What `promise` rejects with; a failure if it resolves. */
export async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

/** localStorage's interface over a Map. */
export class MemoryStorage {
  #items = new Map();
  getItem(key) {
    return this.#items.has(key) ? this.#items.get(key) : null;
  }
  setItem(key, value) {
    this.#items.set(key, String(value));
  }
  removeItem(key) {
    this.#items.delete(key);
  }
}
