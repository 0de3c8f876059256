/**
 * react.js: React bindings of session-client.js (`@session-service/client/react`).
 *
 * Plain JavaScript with `createElement` (no JSX), so it needs no build step of its own; it
 * imports "react" (18 or later), which the page's bundler resolves.
 *
 *     const client = new SessionClient();
 *     <SessionProvider client={client}>      // starts the session on mount
 *       <ResetNotice />                     // the notice after a reset, with "Dismiss"
 *       <App />                             // useSession(), useUpload(), useConversation(id)
 *     </SessionProvider>
 *
 * One store per SessionClient follows the client's "session", "reset" and "waiting" events
 * while a provider or a hook is mounted (listeners are removed when the last one unmounts),
 * and React reads it through useSyncExternalStore. Like the module, nothing here ever holds
 * the session token: `sessionId` is the public id.
 */

import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import { SessionServiceError } from "./session-client.js";

/** Error codes of a call cancelled on purpose: not an error to show. */
const CANCELLED_CODES = new Set(["aborted"]);

function isCancellation(error) {
  if (error instanceof SessionServiceError) return CANCELLED_CODES.has(error.code);
  return error instanceof Error && error.name === "AbortError";
}

/** Every error a hook exposes is a SessionServiceError (a bug's TypeError is wrapped). */
function serviceError(error, code = "unexpected_response") {
  if (error instanceof SessionServiceError) return error;
  return new SessionServiceError(code, {
    detail: error instanceof Error ? error.message : String(error),
    cause: error,
  });
}

/**
 * What the bindings know about one client's session, and the calls they made through it.
 * Snapshots are frozen and replaced on every change (useSyncExternalStore compares them).
 */
class ClientStore {
  #snapshot;
  #listeners = new Set();
  #holders = 0;
  /** The start() in flight, shared by every caller (StrictMode mounts twice). */
  #starting = null;
  /** Calls made through the bindings that have not settled yet. */
  #inflight = new Set();
  /** The calls a "waiting" belongs to: it is cleared once they have all settled. */
  #waitingOn = null;
  #waitTimer = null;

  #onSession = (event) => {
    const sessionId = event.detail?.sessionId ?? null;
    const patch = { sessionId };
    // A session came after a failed start (an action created or reset one): usable again.
    if (sessionId !== null && this.#snapshot.status === "error" && this.#starting === null) {
      patch.status = "ready";
      patch.error = null;
    }
    this.#update(patch);
  };

  #onReset = (event) => {
    const detail = event.detail;
    if (!detail) return;
    // A reset the visitor asked for (reset() without a reason) is no technical issue.
    const shown = detail.reason === "user_requested" ? this.#snapshot.reset : detail;
    this.#update({ sessionId: detail.sessionId ?? this.client.sessionId ?? null, reset: shown });
  };

  #onWaiting = (event) => {
    const detail = event.detail;
    if (!detail) return;
    clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
    this.#waitingOn = new Set(this.#inflight);
    if (this.#waitingOn.size === 0) {
      // A call the bindings did not make (a subscription's, or the page's own): the wait is
      // over when its retry is due.
      const retryAt = Number(detail.retryAt);
      const delay = Number.isFinite(retryAt) ? retryAt - Date.now() : Number(detail.delayMs) || 0;
      this.#waitTimer = setTimeout(() => this.#clearWaiting(), Math.max(0, delay));
    }
    this.#update({ waiting: detail });
  };

  /** @param {import("./session-client.js").SessionClient} client */
  constructor(client) {
    this.client = client;
    const sessionId = client.sessionId ?? null;
    this.#snapshot = Object.freeze({
      status: sessionId === null ? "starting" : "ready",
      sessionId,
      error: null,
      waiting: null,
      reset: null,
    });
  }

  getSnapshot = () => this.#snapshot;

  /** useSyncExternalStore's subscribe: also follows the client while anyone listens. */
  subscribe = (listener) => {
    this.#listeners.add(listener);
    const release = this.retain();
    return () => {
      this.#listeners.delete(listener);
      release();
    };
  };

  /** Follow the client's events until the returned function is called (counted). */
  retain() {
    this.#holders += 1;
    if (this.#holders === 1) this.#attach();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holders -= 1;
      if (this.#holders === 0) this.#detach();
    };
  }

  /** client.start() once at a time; resolves with the public id, or null (see `error`). */
  start() {
    if (this.#starting === null) {
      if (this.#snapshot.status === "error") this.#update({ status: "starting", error: null });
      const pending = this.#session(this.client.start(), { status: "error" }).finally(() => {
        if (this.#starting === pending) this.#starting = null;
      });
      this.#starting = pending;
    }
    return this.#starting;
  }

  /** client.reset(reason); resolves with the new public id, or null (see `error`). */
  reset(reason) {
    return this.#session(reason === undefined ? this.client.reset() : this.client.reset(reason));
  }

  /**
   * A call resolving with the public id: ready with it, or the error (and `failed`, e.g. the
   * status) recorded; resolves with the id or null.
   */
  #session(call, failed = {}) {
    return this.track(call).then(
      (sessionId) => {
        const id = this.client.sessionId ?? sessionId ?? null;
        this.#update({ status: "ready", sessionId: id, error: null });
        return sessionId ?? null;
      },
      (error) => {
        this.#update({ ...failed, error: serviceError(error) });
        return null;
      },
    );
  }

  dismissReset() {
    if (this.#snapshot.reset !== null) this.#update({ reset: null });
  }

  /** Count `promise` as a call of the bindings until it settles; returns it. */
  track(promise) {
    const call = {};
    this.#inflight.add(call);
    const settled = () => {
      this.#inflight.delete(call);
      if (this.#waitingOn?.delete(call) && this.#waitingOn.size === 0) this.#clearWaiting();
    };
    promise.then(settled, settled);
    return promise;
  }

  #attach() {
    this.client.addEventListener("session", this.#onSession);
    this.client.addEventListener("reset", this.#onReset);
    this.client.addEventListener("waiting", this.#onWaiting);
    // Events missed while nobody listened: the public id in use now.
    const sessionId = this.client.sessionId ?? null;
    if (sessionId !== this.#snapshot.sessionId) this.#update({ sessionId });
  }

  #detach() {
    this.client.removeEventListener("session", this.#onSession);
    this.client.removeEventListener("reset", this.#onReset);
    this.client.removeEventListener("waiting", this.#onWaiting);
    clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
    this.#waitingOn = null;
    if (this.#snapshot.waiting !== null) this.#update({ waiting: null });
  }

  #clearWaiting() {
    clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
    this.#waitingOn = null;
    if (this.#snapshot.waiting !== null) this.#update({ waiting: null });
  }

  #update(patch) {
    this.#snapshot = Object.freeze({ ...this.#snapshot, ...patch });
    for (const listener of [...this.#listeners]) listener();
  }
}

/** One store per client, however many providers and hooks use it. */
const stores = new WeakMap();

function storeFor(client) {
  let store = stores.get(client);
  if (store === undefined) {
    store = new ClientStore(client);
    stores.set(client, store);
  }
  return store;
}

const SessionContext = createContext(null);

function useStore(name) {
  const store = useContext(SessionContext);
  if (store === null) throw new Error(`${name} must be used inside <SessionProvider>`);
  return store;
}

function useSnapshot(store) {
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/**
 * Provides `client` (a SessionClient) to the hooks below it and follows its events; calls
 * `client.start()` on mount unless `autoStart` is false (then call useSession().start()).
 */
export function SessionProvider({ client, autoStart = true, children }) {
  if (client === null || typeof client !== "object" || typeof client.start !== "function") {
    throw new TypeError("SessionProvider needs a client: a SessionClient");
  }
  const store = storeFor(client);
  useEffect(() => store.retain(), [store]);
  useEffect(() => {
    if (autoStart) store.start();
  }, [store, autoStart]);
  return createElement(SessionContext.Provider, { value: store }, children);
}

/**
 * The session: `status` ("starting", "ready", "error"), `sessionId` (the public id),
 * `error`, `waiting` (the client waits out a rate limit or an outage: `retryAt`), `start()`
 * and `reset()` (both resolve with the public id, or null with `error` set), and `client`.
 */
export function useSession() {
  const store = useStore("useSession");
  const snapshot = useSnapshot(store);
  const start = useCallback(() => store.start(), [store]);
  const reset = useCallback((reason) => store.reset(reason), [store]);
  return useMemo(
    () => ({
      status: snapshot.status,
      sessionId: snapshot.sessionId,
      error: snapshot.error,
      waiting: snapshot.waiting,
      start,
      reset,
      client: store.client,
    }),
    [snapshot, start, reset, store],
  );
}

const NO_UPLOAD = Object.freeze({ progress: null, uploading: false, error: null });

/**
 * One upload at a time: `upload(file)` resolves with the uploaded file, or null (cancelled,
 * or failed: see `error`); `progress` ({loaded, total} of the request, null before the first
 * bytes), `uploading`, `cancel()` (no error follows), `reset()`. Unmounting cancels.
 */
export function useUpload() {
  const store = useStore("useUpload");
  const [state, setState] = useState(NO_UPLOAD);
  const current = useRef(null); // the AbortController of the upload in flight
  const mounted = useRef(false);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      const controller = current.current;
      current.current = null;
      controller?.abort();
    };
  }, []);

  const upload = useCallback(
    async (file) => {
      current.current?.abort(); // a new upload replaces the one in flight
      const controller = new AbortController();
      current.current = controller;
      const mine = () => mounted.current && current.current === controller;
      setState({ progress: null, uploading: true, error: null });
      const onProgress = (loaded, total) => {
        if (mine()) setState((state) => ({ ...state, progress: { loaded, total } }));
      };
      try {
        const stored = await store.track(
          store.client.uploadFile(file, { onProgress, signal: controller.signal }),
        );
        if (mine()) setState((state) => ({ ...state, uploading: false }));
        return stored;
      } catch (error) {
        if (mine()) {
          setState(
            isCancellation(error)
              ? NO_UPLOAD
              : (state) => ({ ...state, uploading: false, error: serviceError(error) }),
          );
        }
        return null;
      } finally {
        if (current.current === controller) current.current = null;
      }
    },
    [store],
  );

  const cancel = useCallback(() => current.current?.abort(), []);

  const reset = useCallback(() => {
    const controller = current.current;
    current.current = null;
    controller?.abort();
    setState(NO_UPLOAD);
  }, []);

  return useMemo(() => ({ ...state, upload, cancel, reset }), [state, upload, cancel, reset]);
}

/** `messages` plus `incoming`, each `id` and `seq` once, ordered by `seq`. */
function merge(messages, incoming) {
  const ids = new Set(messages.map((message) => message.id));
  const seqs = new Set(messages.map((message) => message.seq));
  const added = [];
  for (const message of incoming) {
    if (message === null || typeof message !== "object") continue;
    if (ids.has(message.id) || seqs.has(message.seq)) continue;
    ids.add(message.id);
    seqs.add(message.seq);
    added.push(message);
  }
  if (added.length === 0) return messages;
  return [...messages, ...added].sort((a, b) => a.seq - b.seq);
}

function conversationState(id) {
  return {
    id,
    messages: [],
    loading: id !== null,
    error: null,
    errorOf: null, // "load", "live" or "send": a successful send clears only its own
    live: null,
    sending: 0,
  };
}

/**
 * A conversation of the session: its history (the newest page, oldest first), then every
 * new message live. `messages` ordered by `seq`, each once; `send(text, options)` resolves
 * with the stored message (appended at once; the stream delivers it again, deduplicated) or
 * null (see `error`); `loading`, `sending`, `error`, `live` (the subscription's status).
 * A null id follows nothing.
 */
export function useConversation(conversationId) {
  const store = useStore("useConversation");
  const { client } = store;
  const id = typeof conversationId === "string" && conversationId !== "" ? conversationId : null;
  const [stored, setState] = useState(() => conversationState(id));
  let state = stored;
  if (stored.id !== id) {
    // Another conversation: nothing of the previous one is shown (adjusted during render).
    state = conversationState(id);
    setState(state);
  }

  useEffect(() => {
    if (id === null) return undefined;
    let following = true;
    let unsubscribe = null;
    const controller = new AbortController();
    const apply = (change) => {
      if (following) setState((state) => (state.id === id ? change(state) : state));
    };
    (async () => {
      let page;
      try {
        page = await store.track(client.messages(id, {}, { signal: controller.signal }));
      } catch (error) {
        if (!isCancellation(error)) {
          apply((state) => ({
            ...state,
            loading: false,
            error: serviceError(error),
            errorOf: "load",
          }));
        }
        return;
      }
      if (!following) return;
      const history = [...(page?.messages ?? [])].reverse(); // newest first: reversed
      const after = history.reduce((last, message) => Math.max(last, message.seq), 0);
      apply((state) => ({ ...state, loading: false, messages: merge(state.messages, history) }));
      unsubscribe = client.subscribe(
        id,
        (message) => apply((state) => ({ ...state, messages: merge(state.messages, [message]) })),
        {
          after,
          onError: (error) =>
            apply((state) => ({ ...state, error: serviceError(error), errorOf: "live" })),
          onStatus: (live) => apply((state) => (state.live === live ? state : { ...state, live })),
        },
      );
    })();
    return () => {
      following = false;
      controller.abort();
      unsubscribe?.();
    };
  }, [store, client, id]);

  const send = useCallback(
    async (text, options) => {
      if (id === null) throw new TypeError("useConversation: no conversation to send to");
      const apply = (change) => setState((state) => (state.id === id ? change(state) : state));
      apply((state) => ({ ...state, sending: state.sending + 1 }));
      try {
        // Not cancelled on unmount: what the visitor sent is stored all the same.
        const message = await store.track(client.send(id, text, options));
        apply((state) => ({
          ...state,
          sending: state.sending - 1,
          messages: merge(state.messages, [message]),
          ...(state.errorOf === "send" ? { error: null, errorOf: null } : {}),
        }));
        return message;
      } catch (error) {
        apply((state) => ({
          ...state,
          sending: state.sending - 1,
          error: serviceError(error),
          errorOf: "send",
        }));
        return null;
      }
    },
    [store, client, id],
  );

  return useMemo(
    () => ({
      messages: state.messages,
      send,
      sending: state.sending > 0,
      loading: state.loading,
      error: state.error,
      live: state.live,
    }),
    [state, send],
  );
}

/**
 * Nothing until the client resets the session (not when the visitor asked for it), then
 * the notice the reset carries (RESET_NOTICE) in a `role="status"` element and a "Dismiss"
 * button. `className` goes on the wrapper; `render({notice, detail, dismiss})` replaces the
 * default markup.
 */
export function ResetNotice({ className, render } = {}) {
  const store = useStore("ResetNotice");
  const { reset: detail } = useSnapshot(store);
  const dismiss = useCallback(() => store.dismissReset(), [store]);
  if (detail === null) return null;
  if (typeof render === "function") {
    return render({ notice: detail.notice, detail, dismiss }) ?? null;
  }
  return createElement(
    "div",
    { className },
    createElement("p", { role: "status" }, detail.notice),
    createElement("button", { type: "button", onClick: dismiss }, "Dismiss"),
  );
}
