/**
 * session-client.js: the browser side of session-service (SPEC §9).
 *
 * A dependency-free ES module, used as is with `<script type="module">`:
 *
 *     import { SessionClient } from "/static/session-client.js";
 *     const client = new SessionClient();
 *     client.addEventListener("reset", (event) => showNotice(event.detail.notice));
 *     await client.start();                 // on page load
 *     await client.ensureSession();         // before each user action
 *
 * Conversations: conversations(), createConversation(), messages(), send() (idempotent: one
 * client_message_id per message, reused by every retry) and subscribe() (live delivery in
 * `seq` order over the events stream, polling where the service has none).
 *
 * A session has a public id (not a secret: it names the session, e.g. to support) and a
 * secret token (UUIDv4 format, 122 random bits), its bearer credential. The token travels in
 * the `X-Session-ID` header, never in a URL, and is never sent to the file storage; it is
 * never exposed either: not by the public API (`sessionId` is the public id), not in events,
 * errors or console output. Both are kept in localStorage (or in memory when localStorage is
 * unusable) so that a reload and other tabs keep the same session. The server replaces the
 * token when details are given: the new one is stored at once, so other tabs take it.
 *
 * It also imports in Node 20 (the unit tests): every browser global (window, navigator,
 * localStorage, location, XMLHttpRequest) is looked up defensively.
 */

/**
 * localStorage key of the session TOKEN (the bearer secret sent in `X-Session-ID`). The name
 * is older than tokens: a value an older version stored there (a bare session id) is presented
 * as a token, answered `upgraded`, and replaced by a reset with that reason.
 */
export const STORAGE_KEY = "session-service.session-id";

/**
 * localStorage key of the session's PUBLIC id (not a secret; the support reference), so that
 * `sessionId` is known across reloads and tabs. Written after the token, removed with it.
 */
export const PUBLIC_ID_KEY = "session-service.session-public-id";

/** What the visitor is told after a reset (the server answers the same text). */
export const RESET_NOTICE =
  "Your session has been reset due to a technical issue. Please start again.";

const API_PREFIX = "/api/v1";
const LOCK_NAME = "session-service:reset";
/** How long one request may take before it counts as lost (option `timeoutMs`, per call `timeout`). */
const DEFAULT_TIMEOUT_MS = 15_000;
/** The longest wait (Retry-After or backoff) sat out for the caller (option `maxWaitMs`). */
const DEFAULT_MAX_WAIT_MS = 30_000;
/** Retry backoff doubles from `retryBaseMs` up to this. */
const MAX_BACKOFF_MS = 10_000;

/**
 * One user message per error code the service answers: exactly the codes of the
 * Errors table in docs/errors.md (a test compares the two, so a new code cannot be forgotten).
 */
export const MESSAGES = Object.freeze({
  validation_error: "Some of the information entered is not valid. Please check it and try again.",
  malformed_json: "The request could not be read. Please reload the page and try again.",
  malformed_request: "The request could not be read. Please reload the page and try again.",
  idempotency_key_invalid: "The request could not be read. Please reload the page and try again.",
  idempotency_key_reused: "This request was already sent with different content. Please reload the page and try again.",
  idempotency_key_in_use: "Your request is still being processed. Please wait a moment.",
  session_invalid: "Your session is no longer valid. Please start again.",
  token_replaced: "Your session was updated in another tab. Please try again.",
  session_exists: "This session already exists. Please reload the page.",
  client_tokens_disabled: "This service starts sessions itself. Please reload the page.",
  weak_client_token: "That session value is not random enough. Please reload the page.",
  unsupported_content_type: "This type of file is not accepted. Please choose a PDF.",
  file_too_large: "This file is too large. Please choose a smaller one.",
  upload_rejected: "The file was rejected: its content does not match its type or size.",
  file_limit_reached: "You have reached the maximum number of files. Delete one to upload another.",
  quota_exceeded: "There is no storage space left for your files. Delete one to upload another.",
  upload_missing: "The file did not finish uploading. Please upload it again.",
  file_not_uploaded: "This file has not finished uploading, so it cannot be downloaded yet.",
  file_not_found: "This file could not be found. It may have been deleted.",
  upload_form_invalid: "The upload was not sent correctly. Please try again.",
  upload_empty: "The file is empty. Please choose another one.",
  upload_token_invalid: "The upload link is not valid. Please try again.",
  upload_expired: "The upload took too long and its link expired. Please try again.",
  upload_policy_violation: "The file does not match what was announced. Please try again.",
  upload_too_large: "The file is larger than announced or allowed.",
  upload_already_used: "This upload link was already used. Please upload the file again.",
  download_refused: "This download link is no longer valid. Please request a new one.",
  storage_unavailable: "File storage is temporarily unavailable. Please try again shortly.",
  unauthorized: "You are not authorised to do this.",
  forbidden: "You do not have permission to do this.",
  auth_not_configured: "This function is not available.",
  session_not_found: "The session could not be found.",
  session_active: "This session has not been verified yet.",
  session_completed: "This session is complete and can no longer be changed.",
  session_reset: "This session was replaced by a newer one.",
  session_expired: "This session has expired.",
  invalid_cursor: "The list could not be continued. Please start again from the beginning.",
  not_found: "The requested resource does not exist.",
  method_not_allowed: "This action is not supported.",
  payload_too_large: "The data sent is too large.",
  headers_too_large: "The request was too large. Please reload the page and try again.",
  too_many_headers: "The request could not be accepted. Please reload the page and try again.",
  request_timeout: "The connection was too slow. Please check your connection and try again.",
  conversation_not_found: "This conversation no longer exists.",
  message_too_long: "This message is too long. Please shorten it.",
  attachment_not_uploaded: "An attached file is not uploaded yet (or no longer exists).",
  conversation_limit_reached: "This conversation is full. Please start a new session.",
  session_inactive: "This session has ended. Please reload the page.",
  stream_limit_reached: "This conversation is open in too many tabs. Close one to follow it here.",
  live_updates_unavailable: "Live updates are paused for a moment. They will resume shortly.",
  cleanup_running: "Maintenance is in progress. Please try again in a moment.",
  cleanup_run_not_found: "That maintenance run is not known here.",
  rate_limited: "Too many attempts. Please wait a moment and try again.",
  cors_rejected: "This site is not allowed to use the service.",
  invalid_host: "This address is not one the service answers on. Please use its usual address.",
  internal_error: "Something went wrong on our side. Please try again later.",
  session_id_exhausted: "A new session could not be started. Please try again.",
  database_unavailable: "The service is temporarily unavailable. Please try again shortly.",
  not_ready: "The service is starting up or under maintenance. Please try again shortly.",
  server_busy: "The service is very busy right now. Please try again in a moment.",
});

/** Codes this module produces itself; no server answer carries them. */
export const CLIENT_MESSAGES = Object.freeze({
  cors_or_network:
    "The service could not be reached. Please check your connection and try again.",
  timeout: "The service took too long to answer. Please try again.",
  aborted: "Cancelled.",
  service_unavailable: "The service is temporarily unavailable. Please try again shortly.",
  session_replaced:
    "This browser no longer holds the session your data belongs to (it was reset " +
    "elsewhere), so that data could not be reached from here.",
  upload_failed: "The file could not be uploaded. Please try again.",
  unexpected_response: "The service gave an unexpected answer. Please try again in a moment.",
});

/** What `cors_or_network` means, for developers (the browser does not tell the two apart). */
const NO_ANSWER =
  "no answer: the network failed, or the browser refused the answer because the service " +
  "does not allow this page's origin (its CORS_ORIGINS setting); the browser console says which";

/** The message of a code neither table knows. */
export const GENERIC_MESSAGE = "Something went wrong. Please try again.";

/**
 * The user-facing message for an error code.
 * @param {string | null | undefined} code
 * @returns {string}
 */
export function messageFor(code) {
  if (typeof code === "string") {
    if (Object.hasOwn(MESSAGES, code)) return MESSAGES[code];
    if (Object.hasOwn(CLIENT_MESSAGES, code)) return CLIENT_MESSAGES[code];
  }
  return GENERIC_MESSAGE;
}

/**
 * Every failure of a SessionClient call. Show `userMessage`; quote `requestId` to support.
 * `retryAt` (epoch ms) is when the service said it may be asked again (a 429 or 503 whose
 * wait was longer than `maxWaitMs`, or the last of the retries), else null.
 */
export class SessionServiceError extends Error {
  /**
   * @param {string} code the problem's `code`, or a client-only code
   * @param {{status?: number, requestId?: string | null, detail?: string | null,
   *          problem?: object | null, retryAt?: number | null, cause?: unknown}} [init]
   */
  constructor(
    code,
    { status = 0, requestId = null, detail = null, problem = null, retryAt = null, cause } = {},
  ) {
    super(detail ? `${code}: ${detail}` : code, cause === undefined ? undefined : { cause });
    this.name = "SessionServiceError";
    this.code = code;
    this.status = status;
    this.requestId = requestId;
    this.userMessage = messageFor(code);
    this.detail = detail;
    this.problem = problem;
    this.retryAt = retryAt;
  }
}

/** The rejection of a call its caller cancelled (or whose page went away). */
function abortedError() {
  return new SessionServiceError("aborted", { detail: "the call was cancelled" });
}

/**
 * `promise`, or a rejection with `aborted` as soon as `signal` aborts (the work itself goes
 * on when others share it, e.g. one start() for several callers).
 */
function raceAbort(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** A call's `{signal, timeout}`, checked (a mistake is a TypeError at once, not a hang). */
function callOptions({ signal, timeout } = {}) {
  if (signal !== undefined && signal !== null && typeof signal.addEventListener !== "function") {
    throw new TypeError("signal must be an AbortSignal");
  }
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
    throw new TypeError("timeout must be a number of milliseconds (0: none)");
  }
  return { signal: signal ?? undefined, timeout };
}

/* ------------------------------------------------------------------------------------------ */
/* Reasons                                                                                     */

/**
 * Validate's `reason` values (server: sessions/errors.py InvalidReason), also the `reason` of a
 * 401 `session_invalid`. `rotated`: the token was replaced when details were given (another tab
 * may hold the new one). `upgraded`: the stored value is a session id from before tokens.
 */
const INVALID_REASONS = Object.freeze([
  "malformed",
  "not_found",
  "expired",
  "reset",
  "rotated",
  "upgraded",
]);

/** The reset reasons this module sends itself (server: sessions/schemas.py ResetReason). */
const RESET_REASONS = Object.freeze({
  MALFORMED: "malformed",
  NOT_FOUND: "not_found",
  EXPIRED: "expired",
  RESET: "reset",
  ROTATED: "rotated",
  UPGRADED: "upgraded",
  TAMPERED: "tampered",
  USER_REQUESTED: "user_requested",
});

/** A server's invalid reason as a reset reason (an unknown one counts as malformed). */
function toResetReason(reason) {
  return INVALID_REASONS.includes(reason) ? reason : RESET_REASONS.MALFORMED;
}

/** The code of a 409 answering a token another tab replaced meanwhile (details or reset). */
const TOKEN_REPLACED = "token_replaced";

/**
 * Could this be a token the server issued (a hyphenated UUIDv4)? Anything else in storage was
 * written by someone else: it is replaced without a validate round trip (reason `tampered`)
 * and never sent as a header (an arbitrary string can even make fetch throw).
 */
const TOKEN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

function looksLikeToken(value) {
  return typeof value === "string" && TOKEN.test(value);
}

/* ------------------------------------------------------------------------------------------ */
/* Storage: localStorage when usable, memory otherwise                                         */

/** `candidate` if it can really store (private modes and policies make it throw), else null. */
function usableStorage(candidate) {
  if (!candidate) return null;
  try {
    const probe = `${STORAGE_KEY}.probe`;
    candidate.setItem(probe, "1");
    candidate.removeItem(probe);
    return candidate;
  } catch {
    return null;
  }
}

function defaultStorage() {
  try {
    // Merely reading `localStorage` throws a SecurityError when storage is blocked.
    return usableStorage(globalThis.localStorage);
  } catch {
    return null;
  }
}

/**
 * The stored token (STORAGE_KEY) and public id (PUBLIC_ID_KEY), mirrored in memory; any
 * storage failure silently switches to memory.
 */
class SessionStore {
  constructor(storage) {
    /** @type {Storage | null} */
    this.backing = storage;
    /** @type {Map<string, string | null>} */
    this.memory = new Map([
      [STORAGE_KEY, null],
      [PUBLIC_ID_KEY, null],
    ]);
    if (storage) {
      this.get(STORAGE_KEY);
      this.get(PUBLIC_ID_KEY);
    }
  }

  /** @param {string} key STORAGE_KEY or PUBLIC_ID_KEY */
  get(key) {
    if (this.backing) {
      try {
        this.memory.set(key, this.backing.getItem(key));
      } catch {
        this.backing = null;
      }
    }
    return this.memory.get(key) ?? null;
  }

  /** @param {string} key @param {string | null} value null removes it */
  set(key, value) {
    this.memory.set(key, value);
    if (!this.backing) return;
    try {
      if (value === null) this.backing.removeItem(key);
      else this.backing.setItem(key, value);
    } catch {
      this.backing = null;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* One replacement at a time, across tabs                                                       */

let localLockTail = Promise.resolve();

/**
 * Run `task` holding the reset lock: the Web Locks API spans every tab of the origin; where
 * it is missing (old browsers, insecure origins, Node) a promise chain serialises this
 * realm's clients.
 */
function withResetLock(task) {
  const locks = globalThis.navigator?.locks;
  if (locks && typeof locks.request === "function") {
    return locks.request(LOCK_NAME, () => task());
  }
  const run = localLockTail.then(() => task());
  localLockTail = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP helpers                                                                                */

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function makeEvent(type, detail) {
  if (typeof CustomEvent === "function") return new CustomEvent(type, { detail });
  const event = new Event(type);
  Object.defineProperty(event, "detail", { value: detail });
  return event;
}

function stringOrNull(value) {
  return typeof value === "string" && value !== "" ? value : null;
}

function parseJsonObject(text) {
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Statuses of a gateway or a service saying "not now": a repeatable call is repeated. */
const RETRYABLE_STATUSES = new Set([502, 503, 504]);

/**
 * A non-2xx answer of the API as an error: its problem+json, or (a proxy's HTML page, an
 * empty body) `service_unavailable` for 502/503/504 and `unexpected_response` otherwise.
 */
function errorFrom(response, text) {
  const problem = parseJsonObject(text);
  const code =
    stringOrNull(problem?.code) ??
    (RETRYABLE_STATUSES.has(response.status) ? "service_unavailable" : "unexpected_response");
  return new SessionServiceError(code, {
    status: response.status,
    requestId: response.headers.get("X-Request-ID") ?? stringOrNull(problem?.request_id),
    detail: stringOrNull(problem?.detail) ?? (problem ? null : `HTTP ${response.status}`),
    problem,
  });
}

/** A 2xx answer's JSON body (null for an empty one). */
function parseBody(response, text) {
  if (response.status === 204 || text === "") return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SessionServiceError("unexpected_response", {
      status: response.status,
      requestId: response.headers.get("X-Request-ID"),
      detail: "the answer is not JSON",
      cause: error,
    });
  }
}

/** How long an answer asks us to wait (Retry-After in seconds or as a date), or null. */
function retryAfterMs(response) {
  const raw = response.headers.get("Retry-After");
  if (raw === null || raw.trim() === "") return null;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(seconds * 1000, 0);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(date - Date.now(), 0);
}

function isSessionInvalid(error) {
  return (
    error instanceof SessionServiceError && error.status === 401 && error.code === "session_invalid"
  );
}

function isTokenReplaced(error) {
  return (
    error instanceof SessionServiceError && error.status === 409 && error.code === TOKEN_REPLACED
  );
}

/**
 * Why a call's token proved unusable: the `reason` of a 401 `session_invalid`, TOKEN_REPLACED
 * for a 409 `token_replaced`, or null for any other failure.
 */
function unusableBecause(error) {
  if (isTokenReplaced(error)) return TOKEN_REPLACED;
  if (!isSessionInvalid(error)) return null;
  return stringOrNull(error.problem?.reason) ?? RESET_REASONS.MALFORMED;
}

/** Was the token replaced by another one of the same session, or by a reset, meanwhile? */
function isReplacement(reason) {
  return reason === RESET_REASONS.ROTATED || reason === TOKEN_REPLACED;
}

/** The token a create or reset answer issues; an answer without one is none of ours. */
function issuedToken(answer) {
  const token = answer?.token;
  if (looksLikeToken(token)) return token;
  throw new SessionServiceError("unexpected_response", {
    detail: "the answer carries no session token",
  });
}

/** S3's XML error codes in the service's own terms (a presigned POST can fail in these ways). */
function s3ErrorCode(code, message) {
  switch (code) {
    case "EntityTooLarge":
      return "upload_too_large";
    case "EntityTooSmall":
      return "upload_empty";
    case "AccessDenied":
      // "Invalid according to Policy: Policy expired." or "...: Policy Condition failed: ..."
      return /expired/i.test(message) ? "upload_expired" : "upload_policy_violation";
    case "ExpiredToken":
      return "upload_expired";
    case "SignatureDoesNotMatch":
    case "InvalidAccessKeyId":
    case "InvalidPolicyDocument":
      return "upload_token_invalid";
    default:
      return "upload_failed";
  }
}

function responseHeader(xhr, name) {
  try {
    return stringOrNull(xhr.getResponseHeader(name));
  } catch {
    return null;
  }
}

/** A failed direct upload: problem+json from the local backend, S3's XML, or just a status. */
function storageError(xhr) {
  let text = "";
  try {
    text = typeof xhr.responseText === "string" ? xhr.responseText : "";
  } catch {
    // responseText is unreadable for non-text response types.
  }
  const requestId = responseHeader(xhr, "X-Request-ID") ?? responseHeader(xhr, "x-amz-request-id");
  const problem = parseJsonObject(text);
  if (problem && stringOrNull(problem.code)) {
    return new SessionServiceError(problem.code, {
      status: xhr.status,
      requestId: requestId ?? stringOrNull(problem.request_id),
      detail: stringOrNull(problem.detail),
      problem,
    });
  }
  const s3Code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? null;
  const s3Message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
  return new SessionServiceError(s3Code ? s3ErrorCode(s3Code, s3Message) : "upload_failed", {
    status: xhr.status,
    requestId,
    detail: s3Code
      ? `storage answered ${s3Code}: ${s3Message}`
      : `storage answered HTTP ${xhr.status}`,
  });
}

/* ------------------------------------------------------------------------------------------ */
/* Conversations: message ids, the event stream, live delivery                                 */

/** The largest page the messages route answers. */
const PAGE_LIMIT = 200;
/** Defaults of subscribe(): the fallback's polling period, the silence that ends a stream. */
const POLL_INTERVAL_MS = 3_000;
const IDLE_TIMEOUT_MS = 60_000;
/** Reconnection delays grow to at most this. */
const MAX_RECONNECT_MS = 30_000;

function conversationPath(conversationId) {
  return `/session/conversations/${encodeURIComponent(String(conversationId))}`;
}

/** A `client_message_id`: a UUIDv4 (crypto.randomUUID() is missing on insecure origins). */
function newClientMessageId() {
  const crypto = globalThis.crypto;
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const parts = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)];
  return `${parts.join("-")}-${hex.slice(20)}`;
}

/** `?before=&after=&limit=` of a messages page (only the values given). */
function windowQuery({ before, after, limit } = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries({ after, before, limit })) {
    if (value === undefined || value === null) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`messages: ${name} must be a whole number`);
    }
    query.set(name, String(value));
  }
  const text = query.toString();
  return text === "" ? "" : `?${text}`;
}

/** A messages page as the route answers it, with its fields always present. */
function toPage(answer) {
  return {
    messages: Array.isArray(answer?.messages) ? answer.messages : [],
    next_before: Number.isSafeInteger(answer?.next_before) ? answer.next_before : null,
    next_after: Number.isSafeInteger(answer?.next_after) ? answer.next_after : null,
  };
}

function isSeq(value) {
  return Number.isSafeInteger(value) && value > 0;
}

/** The messages of `page` after `last` (and before `until`), oldest first. */
function freshMessages(page, last, until = Infinity) {
  return page.messages
    .filter((message) => isSeq(message?.seq) && message.seq > last && message.seq < until)
    .sort((a, b) => a.seq - b.seq);
}

/** An error thrown by a callback of the page: shown in the console, never breaking delivery. */
function reportLater(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}

/**
 * Incremental parser of a `text/event-stream` body (the WHATWG HTML rules): feed it decoded
 * text in chunks of any size; each call returns the events the chunk completed. Lines end in
 * CRLF, LF or CR (a CRLF split across chunks counts once); a leading BOM is dropped; comment
 * lines (`: heartbeat`) are skipped; `data` lines are joined with "\n"; `id` persists across
 * events (one holding NUL is ignored) and is each event's `id`; `retry` takes digits only.
 * A block without `data` dispatches nothing; an event the stream ends in the middle of is never
 * returned.
 */
export class EventStreamParser {
  #buffer = "";
  #data = "";
  #type = "";
  #lastEventId = "";
  #retry = null;
  #started = false;
  #afterCR = false;

  /** The last `id` field seen ("" before any). */
  get lastEventId() {
    return this.#lastEventId;
  }

  /** The last valid `retry` field in ms (the server's reconnection delay), or null. */
  get retry() {
    return this.#retry;
  }

  /**
   * @param {string} chunk
   * @returns {{type: string, data: string, id: string}[]}
   */
  push(chunk) {
    let text = String(chunk);
    if (!this.#started && text !== "") {
      this.#started = true;
      if (text.startsWith("\uFEFF")) text = text.slice(1);
    }
    if (this.#afterCR && text !== "") {
      this.#afterCR = false;
      if (text.startsWith("\n")) text = text.slice(1); // the LF of a CRLF split across chunks
    }
    const buffer = this.#buffer + text;
    const events = [];
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    for (let match; (match = lineEnd.exec(buffer)) !== null; ) {
      if (match[0] === "\r" && lineEnd.lastIndex === buffer.length) this.#afterCR = true;
      this.#line(buffer.slice(start, match.index), events);
      start = lineEnd.lastIndex;
    }
    this.#buffer = buffer.slice(start);
    return events;
  }

  #line(line, events) {
    if (line === "") {
      this.#dispatch(events);
      return;
    }
    if (line.startsWith(":")) return; // a comment: the server's heartbeat
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#type = value;
    else if (field === "data") this.#data += `${value}\n`;
    else if (field === "id" && !value.includes("\0")) this.#lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.#retry = Number(value);
  }

  #dispatch(events) {
    const data = this.#data;
    const type = this.#type || "message";
    this.#data = "";
    this.#type = "";
    if (data === "") return;
    events.push({ type, data: data.slice(0, -1), id: this.#lastEventId });
  }
}

/**
 * One subscribe(): delivers a conversation's messages after `after` exactly once each, in
 * `seq` order and without gaps, until closed.
 *
 * It reads the events endpoint as a stream (`open`) and resumes after any interruption with
 * the last `seq` it delivered; a `seq` that jumps has the missing range fetched first
 * (`page`). When the service has no events endpoint (`open` resolves null) it polls the
 * messages after the last `seq` instead. Interruptions (no answer, 5xx, 429, a stream that
 * ends or goes silent) are retried with growing delays; anything else (the conversation or
 * the session gone) closes it and goes to `onError`.
 */
class Subscription {
  #open;
  #page;
  #wait;
  #onMessage;
  #onError;
  #onStatus;
  #pollMs;
  #idleMs;
  #baseMs;
  #last;
  #controller = new AbortController();
  #closed = false;
  #polling = false;
  /** Whether a stream was open before (the next one resumes with Last-Event-ID). */
  #resuming = false;
  /** Whether the current attempt received anything (its failure then restarts the backoff). */
  #received = false;
  #serverRetryMs = null;
  #status = null;

  constructor({ open, page, wait, onMessage, onError, onStatus, after, pollMs, idleMs, baseMs }) {
    this.#open = open;
    this.#page = page;
    this.#wait = wait;
    this.#onMessage = onMessage;
    this.#onError = onError;
    this.#onStatus = onStatus;
    this.#last = after;
    this.#pollMs = pollMs;
    this.#idleMs = idleMs;
    this.#baseMs = baseMs;
  }

  start() {
    Promise.resolve()
      .then(() => this.#run())
      .catch((error) => this.#fail(error));
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller.abort();
    this.#setStatus("closed");
  }

  async #run() {
    let failures = 0;
    while (!this.#closed) {
      let delay;
      this.#received = false;
      try {
        if (this.#polling) {
          await this.#poll();
          failures = 0;
          delay = this.#pollMs;
          this.#setStatus("polling");
        } else {
          if (!(await this.#stream())) continue; // no events endpoint: poll at once
          failures = 1; // the server ended the stream: back soon
          delay = this.#backoff(failures, null);
        }
      } catch (error) {
        if (this.#closed) return;
        if (!isInterruption(error)) {
          this.#fail(error);
          return;
        }
        failures = this.#received ? 1 : failures + 1;
        delay = this.#backoff(failures, error);
      }
      if (this.#closed) return;
      if (failures > 0) this.#setStatus("reconnecting");
      await this.#wait(delay, this.#controller.signal);
    }
  }

  /** The delay before attempt `failures` + 1: the server's `retry` or base, doubled, jittered. */
  #backoff(failures, error) {
    const asked = error?.problem?.retry_after;
    if (Number.isFinite(asked) && asked > 0) return Math.min(asked * 1000, MAX_RECONNECT_MS);
    const base = this.#serverRetryMs ?? this.#baseMs;
    const delay = Math.min(base * 2 ** Math.max(0, failures - 1), MAX_RECONNECT_MS);
    return Math.round(delay * (1 + Math.random() * 0.25)); // clients part ways after an outage
  }

  /** One stream until it ends (true), or false when the service has no events endpoint. */
  async #stream() {
    this.#setStatus(this.#resuming ? "reconnecting" : "connecting");
    const connection = new AbortController();
    const stop = () => connection.abort();
    this.#controller.signal.addEventListener("abort", stop);
    let idle = null;
    try {
      const response = await this.#open(this.#last, this.#resuming, connection.signal);
      if (this.#closed) return true;
      if (response === null) {
        this.#polling = true;
        this.#setStatus("polling");
        return false;
      }
      if (!response.body) {
        throw new SessionServiceError("unexpected_response", { detail: "the stream has no body" });
      }
      this.#resuming = true;
      this.#setStatus("live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const parser = new EventStreamParser();
      // Silence longer than the heartbeats allow: the connection is dead without knowing it.
      const arm = () => {
        idle = setTimeout(() => connection.abort(), this.#idleMs);
      };
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        clearTimeout(idle);
        if (done || this.#closed) return true;
        this.#received = true;
        const events = parser.push(decoder.decode(value, { stream: true }));
        if (parser.retry !== null) this.#serverRetryMs = parser.retry;
        for (const event of events) {
          if (event.type === "message") await this.#take(event);
        }
        arm();
      }
    } finally {
      clearTimeout(idle);
      this.#controller.signal.removeEventListener("abort", stop);
      connection.abort(); // nothing is left reading an open connection
    }
  }

  /** A streamed message: repeats are dropped, a `seq` that jumps has the gap fetched first. */
  async #take(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // unreadable: the next one's gap brings it from the messages route
    }
    if (!isSeq(message?.seq) || message.seq <= this.#last) return;
    if (message.seq > this.#last + 1) await this.#fill(message.seq);
    if (message.seq > this.#last) this.#deliver(message);
  }

  /** Deliver the messages between the last `seq` delivered and `until`. */
  async #fill(until) {
    while (!this.#closed && this.#last < until - 1) {
      const page = await this.#page(
        { after: this.#last, before: until, limit: PAGE_LIMIT },
        this.#controller.signal,
      );
      const fresh = freshMessages(page, this.#last, until);
      if (fresh.length === 0) return; // nothing stored there: never wait for it
      for (const message of fresh) this.#deliver(message);
    }
  }

  /** The fallback: every message after the last one delivered, page by page. */
  async #poll() {
    while (!this.#closed) {
      const page = await this.#page(
        { after: this.#last, limit: PAGE_LIMIT },
        this.#controller.signal,
      );
      this.#received = true;
      const fresh = freshMessages(page, this.#last);
      for (const message of fresh) this.#deliver(message);
      if (fresh.length === 0 || page.messages.length < PAGE_LIMIT) return;
    }
  }

  #deliver(message) {
    if (this.#closed) return;
    this.#last = message.seq;
    try {
      this.#onMessage(message);
    } catch (error) {
      reportLater(error);
    }
  }

  #fail(error) {
    if (this.#closed) return;
    this.close();
    if (typeof this.#onError === "function") this.#onError(error);
    else reportLater(error);
  }

  #setStatus(status) {
    if (status === this.#status || typeof this.#onStatus !== "function") return;
    this.#status = status;
    try {
      this.#onStatus(status);
    } catch (error) {
      reportLater(error);
    }
  }
}

/**
 * A failure worth waiting out: no answer (or a broken or silent stream), a server error,
 * rate limited. Anything else (404 conversation_not_found, a 401 after the session was
 * replaced, a 4xx) will not get better by asking again.
 */
function isInterruption(error) {
  if (!(error instanceof SessionServiceError)) return true;
  // Status 0: no answer; below 300: an answer that is not what it should be (not JSON).
  return error.status < 300 || error.status === 429 || error.status >= 500;
}

/**
 * The error of a call on a session this browser no longer holds (its token was reset or
 * expired, and no replacement of the same session is stored): `session_replaced` or
 * `session_expired`, carrying the service's answer as its cause.
 */
function heldSessionLost(error, reason) {
  const expired = reason === RESET_REASONS.EXPIRED;
  return new SessionServiceError(expired ? "session_expired" : "session_replaced", {
    status: error.status,
    requestId: error.requestId,
    detail: expired
      ? "the session expired: its data is no longer reachable and the service deletes it"
      : `the session was replaced (${reason}): its data belongs to a session this browser ` +
        "no longer holds, so nothing was done with it",
    problem: error.problem,
    cause: error,
  });
}

/** The events route is not served here (a service without it, or a proxy's own 404). */
function isMissingRoute(error) {
  return (
    error instanceof SessionServiceError &&
    error.status === 404 &&
    (error.code === "not_found" || error.code === "unexpected_response")
  );
}

/* ------------------------------------------------------------------------------------------ */
/* The client                                                                                  */
/**
 * The frontend flow of session-service: one session per browser (shared by its tabs), its
 * token validated before each action, replaced (with a notice) when unusable, and followed
 * when details rotate it here or another tab stores a newer one.
 *
 * Every method takes `{signal, timeout}` last: an AbortSignal that cancels the call at once
 * (rejecting with `aborted`, sending nothing more), and the longest one request may take
 * (default `timeoutMs`, 15 s; 0 for none). A 429 is waited out (any call: it was refused
 * before anything happened); no answer, a timeout and 502/503/504 are retried with capped
 * exponential backoff and jitter when the call is safe to repeat: reads, and the calls that
 * change something, which carry an `Idempotency-Key` so the service runs them once however
 * often they arrive. A wait longer than `maxWaitMs` (default 30 s) is not sat out: the call
 * rejects with the service's code and `retryAt`. At most `maxRetries` retries per request.
 *
 * Events (public ids only, never the token): "session" (detail `{sessionId}`) whenever the
 * session in use changes (created, reset, erased, changed by another tab; not when only its
 * token is rotated); "reset" (detail `{notice, previousSessionId, sessionId, reason}`) when
 * this client replaced an unusable session: show the notice; "waiting" (detail `{reason,
 * retryAt, delayMs, code}`, reason `rate_limited` or `unavailable`) before each wait, so a
 * page can say "Too many requests, retrying in 42 s".
 */
export class SessionClient extends EventTarget {
  #baseUrl;
  #fetch;
  #maxRetries;
  #retryBaseMs;
  #timeoutMs;
  #maxWaitMs;
  #sleep;
  #store;
  /** The token this client has adopted (validated, created, reset, rotated); mirrors storage. */
  #token = null;
  /** The public id of #token's session (null while unknown). */
  #publicId = null;
  #lastRequestId = null;
  /** The shared start()/ensureSession() in flight. */
  #establishing = null;
  /** Replacements in flight, by the token they replace ("" for none). */
  #replacing = new Map();
  /** Pending uploads a cancel or failure left behind, deleted before the next slot. */
  #abandoned = new Set();
  #window = null;
  #onStorage = (event) => this.#storageChanged(event);

  /**
   * @param {{baseUrl?: string, storage?: Storage | null, fetch?: typeof fetch,
   *          maxRetries?: number, retryBaseMs?: number, timeoutMs?: number,
   *          maxWaitMs?: number, sleep?: (ms: number) => Promise<void>}} [options]
   */
  constructor(options = {}) {
    super();
    const {
      baseUrl = "",
      storage,
      fetch,
      maxRetries = 3,
      retryBaseMs = 500,
      timeoutMs = DEFAULT_TIMEOUT_MS,
      maxWaitMs = DEFAULT_MAX_WAIT_MS,
      sleep,
    } = options;
    this.#baseUrl = String(baseUrl).replace(/\/+$/, "");
    // window.fetch must be called with the global as `this` ("Illegal invocation" otherwise).
    this.#fetch = (url, init) => (fetch ?? globalThis.fetch).call(globalThis, url, init);
    this.#maxRetries = Math.max(0, maxRetries);
    this.#retryBaseMs = Math.max(0, retryBaseMs);
    this.#timeoutMs = Math.max(0, timeoutMs);
    this.#maxWaitMs = Math.max(0, maxWaitMs);
    this.#sleep = sleep ?? defaultSleep;
    this.#store = new SessionStore(
      storage === undefined ? defaultStorage() : usableStorage(storage),
    );
    const win = globalThis.window;
    if (win && typeof win.addEventListener === "function") {
      win.addEventListener("storage", this.#onStorage);
      this.#window = win;
    }
  }

  /**
   * The PUBLIC id of the session in use: the reference to quote to support, not a secret.
   * Null before start(), after erase(), and while not known yet. Never the token.
   */
  get sessionId() {
    return this.#publicId;
  }

  /** X-Request-ID of the last call that failed (null when it got no answer), for support. */
  get lastRequestId() {
    return this.#lastRequestId;
  }

  /** Stop following other tabs (removes the window "storage" listener). */
  close() {
    this.#window?.removeEventListener("storage", this.#onStorage);
    this.#window = null;
  }

  /**
   * On page load: take the stored token and validate it (replacing it if invalid), or create a
   * session when none is stored. Resolves with the session's public id.
   * @param {{signal?: AbortSignal, timeout?: number}} [options]
   * @returns {Promise<string>}
   */
  start(options) {
    return this.#track(async () => {
      await this.#establishShared(callOptions(options));
      return this.#publicId;
    });
  }

  /**
   * Before each user action: validate the token; on `{valid: false, reason}` reset. Concurrent
   * calls share one check (one validate, at most one reset). Resolves with the public id.
   * @param {{signal?: AbortSignal, timeout?: number}} [options]
   * @returns {Promise<string>}
   */
  ensureSession(options) {
    return this.start(options);
  }

  /**
   * Replace the session with a new one and dispatch "reset". Two callers, or two tabs, that
   * replace the same token at once cause one reset: the second adopts the first one's result.
   * Resolves with the new public id.
   * @param {string} [reason] a reset reason the server accepts; default "user_requested"
   * @param {{signal?: AbortSignal, timeout?: number}} [options]
   * @returns {Promise<string>}
   */
  reset(reason = RESET_REASONS.USER_REQUESTED, options) {
    const call = callOptions(options);
    return this.#track(async () => {
      const old = this.#token ?? this.#store.get(STORAGE_KEY);
      await raceAbort(this.#replace(old, reason, false, call), call.signal);
      return this.#publicId;
    });
  }

  /** The holder's session (with its details). */
  getSession(options) {
    const call = callOptions(options);
    return this.#track(() => this.#holder("GET", "/session", { idempotent: true, ...call }));
  }

  /** The session's files, oldest first. */
  listFiles(options) {
    const call = callOptions(options);
    return this.#track(async () => {
      const answer = await this.#holder("GET", "/session/files", { idempotent: true, ...call });
      return Array.isArray(answer?.files) ? answer.files : [];
    });
  }

  /** Delete one file (object and row). */
  deleteFile(fileId, options) {
    const call = callOptions(options);
    return this.#track(async () => {
      // Not repeated after no answer: a repeat that arrives second answers 404.
      await this.#holder("DELETE", `/session/files/${encodeURIComponent(fileId)}`, {
        retryAfterReset: false,
        ...call,
      });
    });
  }

  /** A short-lived absolute URL serving the file as an attachment. */
  downloadUrl(fileId, options) {
    const call = callOptions(options);
    return this.#track(async () => {
      const answer = await this.#holder(
        "GET",
        `/session/files/${encodeURIComponent(fileId)}/download`,
        { idempotent: true, retryAfterReset: false, ...call },
      );
      return this.#absolute(answer.url);
    });
  }

  /**
   * Store name and email with the visitor's explicit consent; resolves with the session. The
   * answer carries the session's new token (the one sent stops working at once): it is stored
   * before anything else happens, so other tabs take it too. It is not part of the result.
   */
  submitDetails({ name, email, consent }, options) {
    const call = callOptions(options);
    return this.#track(async () => {
      const answer = await this.#holder("PUT", "/session/details", {
        body: { name, email, consent_user_data: consent },
        // Repeatable: if a lost answer did rotate the token, the repeat is answered
        // `rotated`, and handled like any replaced token.
        idempotent: true,
        rotates: true,
        ...call,
      });
      const { token: _token, ...session } = answer ?? {};
      return session;
    });
  }

  /**
   * The GDPR export of the session this browser holds: the session, its files, its
   * conversations and its audit events. It never exports another session: when the held one
   * was reset elsewhere (or expired), it rejects with `session_replaced` (or
   * `session_expired`) instead of exporting the empty session that replaces it.
   */
  exportData(options) {
    const call = callOptions(options);
    return this.#track(() =>
      this.#onHeldSession(() =>
        this.#holder("GET", "/session/export", {
          idempotent: true,
          retryAfterReset: false,
          ...call,
        }),
      ),
    );
  }

  /**
   * GDPR erasure of the session this browser holds, and of the sessions it replaced (the
   * service follows the reset chain it can prove), then forget it (the next action creates a
   * new one). When another tab replaced the token (details, or a reset) and stored the new
   * one, the erasure uses that one: the same visitor's data. When the session was reset
   * elsewhere and this browser does not hold its replacement, it rejects with
   * `session_replaced` (nothing was erased; the data belongs to a session it no longer
   * holds); an expired one rejects with `session_expired` (the service deletes it itself).
   * Only a session the service no longer knows at all resolves as "nothing left to erase".
   */
  erase(options) {
    const call = callOptions(options);
    return this.#track(async () => {
      let token = this.#token ?? this.#store.get(STORAGE_KEY);
      for (let followed = false; looksLikeToken(token); ) {
        try {
          await this.#send("DELETE", "/session", { token, ...call });
          break;
        } catch (error) {
          const reason = unusableBecause(error);
          if (reason === null) throw error;
          if (!followed && (isReplacement(reason) || reason === RESET_REASONS.RESET)) {
            // Another tab may hold the replacement: the same visitor, provably.
            followed = true;
            const stored = await raceAbort(this.#settledToken(), call.signal);
            if (stored !== token && looksLikeToken(stored)) {
              token = stored;
              continue;
            }
          }
          if (reason !== RESET_REASONS.NOT_FOUND) throw heldSessionLost(error, reason);
          break; // erased already (or never known): nothing of it is left
        }
      }
      this.#store.set(STORAGE_KEY, null);
      this.#store.set(PUBLIC_ID_KEY, null);
      this.#use(null, null);
    });
  }

  /**
   * Upload a file straight to storage: ensureSession(), an upload slot, a multipart POST of
   * the slot's fields in order and the file last (progress, cancellable), then completion.
   * Resolves with the file (`uploaded`); a rejected file rejects with `upload_rejected`.
   * Cancelling (`signal`) rejects with `aborted` at once, whatever the call waits for; a slot
   * already taken is deleted again (now, or before the next upload when the service cannot be
   * reached), so no pending file is left behind. `timeout` bounds each API request, not the
   * transfer of the file itself.
   * @param {Blob & {name?: string}} file
   * @param {{onProgress?: (loaded: number, total: number) => void, signal?: AbortSignal,
   *          timeout?: number}} [options]
   */
  uploadFile(file, { onProgress, ...options } = {}) {
    const call = callOptions(options);
    const { signal } = call;
    return this.#track(async () => {
      if (typeof Blob === "function" && !(file instanceof Blob)) {
        throw new TypeError("uploadFile expects a File or a Blob");
      }
      if (signal?.aborted) throw abortedError();
      if (file.size === 0) throw new SessionServiceError("upload_empty");
      await this.ensureSession(call);
      await this.#deleteAbandoned(call);
      const name = typeof file.name === "string" && file.name !== "" ? file.name : "upload";
      const slot = await this.#holder("POST", "/session/uploads", {
        body: { name, content_type: file.type || "application/pdf", size: file.size },
        idempotencyKey: newClientMessageId(),
        ...call,
      });
      const fileId = slot.file.id;
      try {
        if (signal?.aborted) throw abortedError();
        await this.#postForm(slot.upload, file, name, onProgress, signal);
      } catch (error) {
        this.#abandon(fileId);
        throw error;
      }
      // Completion is idempotent, so it is repeated. After a reset the file belongs to the
      // old session: retrying on the new one could only answer 404.
      return this.#holder("POST", `/session/files/${encodeURIComponent(fileId)}/complete`, {
        idempotent: true,
        retryAfterReset: false,
        ...call,
      });
    });
  }

  /** A slot whose upload never finished: delete it now, or before the next upload. */
  #abandon(fileId) {
    this.#abandoned.add(fileId);
    this.#deleteAbandoned({}).catch(() => undefined);
  }

  /** Delete the pending files earlier uploads left (a file already gone counts as done). */
  async #deleteAbandoned(call) {
    for (const fileId of [...this.#abandoned]) {
      try {
        await this.#holder("DELETE", `/session/files/${encodeURIComponent(fileId)}`, {
          retryAfterReset: false,
          ...call,
        });
      } catch (error) {
        if (error?.code === "aborted") throw error;
        // 404: gone already; 401: it went with a session this browser no longer holds.
        if (error?.status !== 404 && error?.status !== 401) continue; // not now: next time
      }
      this.#abandoned.delete(fileId);
    }
  }

  /* ---------------------------------------------------------------------------------------- */
  /* Conversations                                                                            */
  /*                                                                                          */
  /* A conversation belongs to the session it was started in: after a reset its calls are not */
  /* repeated on the new session (they could only answer 404), the caller's error is thrown.  */

  /** The session's conversations, oldest first. */
  conversations(options) {
    const call = callOptions(options);
    return this.#track(async () => {
      const answer = await this.#holder("GET", "/session/conversations", {
        idempotent: true,
        ...call,
      });
      return Array.isArray(answer?.conversations) ? answer.conversations : [];
    });
  }

  /**
   * Start a conversation in the session (a title is optional). Its Idempotency-Key makes a
   * repeat after no answer start one conversation, not two.
   * @param {{title?: string | null, signal?: AbortSignal, timeout?: number}} [options]
   */
  createConversation({ title, ...options } = {}) {
    const call = callOptions(options);
    return this.#track(() =>
      this.#holder("POST", "/session/conversations", {
        body: title === undefined || title === null ? {} : { title },
        idempotencyKey: newClientMessageId(),
        ...call,
      }),
    );
  }

  /**
   * A page of a conversation's messages: the newest first by default (`before`: older than
   * that `seq`), oldest first with `after` (with both: the range between). Ask again with
   * `next_before` or `next_after` for the next page.
   * @param {string} conversationId
   * @param {{before?: number, after?: number, limit?: number, signal?: AbortSignal,
   *          timeout?: number}} [window]
   */
  messages(conversationId, { signal, timeout, ...window } = {}) {
    const call = callOptions({ signal, timeout });
    return this.#track(() => this.#page(conversationId, window, call));
  }

  /**
   * Send the visitor's message; resolves with it as stored (its `seq` and `id`). It always
   * carries a `client_message_id` (`clientMessageId`, else a new UUID) and an
   * Idempotency-Key, and every repeat (no answer, 502/503/504, 429) sends the same ones: the
   * service stores a message once however often it arrives, and answers a repeat with the
   * stored message. Pass your own `clientMessageId` to make a visitor's "Send again" just as
   * safe.
   * @param {string} conversationId
   * @param {string} text
   * @param {{attachments?: readonly string[], metadata?: Record<string, unknown> | null,
   *          clientMessageId?: string, signal?: AbortSignal, timeout?: number}} [options]
   */
  send(conversationId, text, { attachments = [], metadata, clientMessageId, ...options } = {}) {
    const call = callOptions(options);
    return this.#track(() => {
      const body = {
        content: String(text),
        client_message_id: clientMessageId ?? newClientMessageId(),
        attachments: [...attachments],
      };
      if (metadata !== undefined) body.metadata = metadata;
      return this.#holder("POST", `${conversationPath(conversationId)}/messages`, {
        body,
        idempotencyKey: newClientMessageId(),
        retryAfterReset: false,
        ...call,
      });
    });
  }

  /**
   * Follow a conversation: `onMessage` gets every message after `after` (default 0: all of
   * them; pass the newest `seq` already shown) exactly once, in `seq` order, never with a gap:
   * the visitor's own, the agent's, and those sent from other tabs. Returns the function that
   * stops it (no call of `onMessage` follows).
   *
   * It reads `GET .../events` as a stream with fetch (the token in `X-Session-ID`, never in a
   * URL; EventSource cannot send it), and after a disconnect, a silence longer than
   * `idleTimeoutMs` or a server error, reconnects with growing delays sending
   * `Last-Event-ID`: the last `seq` delivered. A `seq` that jumps has the range between
   * fetched first; repeats are dropped. Where the service has no events route (404
   * `not_found`) it polls `GET .../messages?after=<last seq>` every `pollIntervalMs` instead.
   * When following cannot go on (the conversation deleted, the session replaced) it stops
   * and calls `onError`.
   * @param {string} conversationId
   * @param {(message: object) => void} onMessage
   * @param {{after?: number, onError?: (error: SessionServiceError) => void,
   *          onStatus?: (status: string) => void, pollIntervalMs?: number,
   *          idleTimeoutMs?: number}} [options]
   * @returns {() => void}
   */
  subscribe(
    conversationId,
    onMessage,
    {
      after = 0,
      onError,
      onStatus,
      pollIntervalMs = POLL_INTERVAL_MS,
      idleTimeoutMs = IDLE_TIMEOUT_MS,
    } = {},
  ) {
    if (typeof onMessage !== "function") {
      throw new TypeError("subscribe needs an onMessage function");
    }
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new TypeError("subscribe: after must be a whole number");
    }
    const subscription = new Subscription({
      open: (last, resuming, signal) => this.#openEvents(conversationId, last, resuming, signal),
      page: (window, signal) => this.#page(conversationId, window, { signal }),
      wait: (ms, signal) => this.#pause(ms, signal),
      onMessage,
      onError,
      onStatus,
      after,
      pollMs: Math.max(0, pollIntervalMs),
      idleMs: Math.max(1, idleTimeoutMs),
      baseMs: this.#retryBaseMs,
    });
    subscription.start();
    return () => subscription.close();
  }


  /** GET a messages page (repeatable: it changes nothing). */
  async #page(conversationId, window, call) {
    const answer = await this.#holder(
      "GET",
      `${conversationPath(conversationId)}/messages${windowQuery(window)}`,
      { idempotent: true, retryAfterReset: false, ...call },
    );
    return toPage(answer);
  }

  /**
   * Open the conversation's event stream after `last` (resuming: with Last-Event-ID too);
   * null when the service has no events route (then subscribe polls). Its own retries are
   * the subscription's.
   */
  async #openEvents(conversationId, last, resuming, signal) {
    const headers = resuming ? { "Last-Event-ID": String(last) } : {};
    let response;
    try {
      response = await this.#holder(
        "GET",
        `${conversationPath(conversationId)}/events?after=${last}`,
        { stream: true, headers, signal, retryAfterReset: false },
      );
    } catch (error) {
      if (isMissingRoute(error)) return null;
      throw error;
    }
    const type = response.headers.get("Content-Type") ?? "";
    if (!/^text\/event-stream\b/i.test(type)) {
      await response.body?.cancel().catch(() => undefined);
      return null; // a page, not a stream (a catch-all route in front of the service)
    }
    return response;
  }

  /* ---------------------------------------------------------------------------------------- */

  /** Run a public call; remember the request id of a failure for support. */
  async #track(work) {
    try {
      return await work();
    } catch (error) {
      if (error instanceof SessionServiceError) this.#lastRequestId = error.requestId;
      throw error;
    }
  }

  /**
   * start()/ensureSession(), shared by concurrent callers; resolves with the token. Each
   * caller's signal ends its own wait; the shared work runs with the first caller's timeout.
   */
  #establishShared(call = {}) {
    if (!this.#establishing) {
      const pending = this.#establish({ timeout: call.timeout }).finally(() => {
        if (this.#establishing === pending) this.#establishing = null;
      });
      this.#establishing = pending;
    }
    return raceAbort(this.#establishing, call.signal);
  }

  async #establish(call) {
    for (let attempt = 0; ; attempt += 1) {
      const stored = this.#store.get(STORAGE_KEY);
      if (stored === null) return this.#replace(null, null, true, call);
      if (!looksLikeToken(stored)) {
        return this.#replace(stored, RESET_REASONS.TAMPERED, false, call);
      }
      let answer;
      try {
        answer = await this.#validate(stored, call);
      } catch (error) {
        // Replaced while the check waited (another tab): read the storage again, check once more.
        if (attempt === 0 && isTokenReplaced(error)) continue;
        throw error;
      }
      if (answer.valid) return this.#adopt(stored, this.#publicIdIn(answer.session, stored));
      // `rotated` too: the replacement first takes a valid token another tab stored.
      return this.#replace(stored, toResetReason(answer.reason), false, call);
    }
  }

  /** POST /session/validate for `token`: `{valid: true, session}` or `{valid: false, reason}`. */
  async #validate(token, call = {}) {
    const answer = await this.#send("POST", "/session/validate", {
      token,
      idempotent: true,
      timeout: call.timeout,
    });
    if (!answer || typeof answer.valid !== "boolean") {
      throw new SessionServiceError("unexpected_response", {
        detail: "validate answered no verdict",
      });
    }
    return answer;
  }

  /**
   * Replace `old` (null: nothing stored, then `create`), once per token however many ask.
   * Resolves with the new token. Shared, so it runs without any one caller's signal.
   */
  #replace(old, reason, create, call = {}) {
    const key = old ?? "";
    let pending = this.#replacing.get(key);
    if (!pending) {
      const shared = { timeout: call.timeout };
      pending = withResetLock(() => this.#replaceLocked(old, reason, create, shared)).finally(
        () => {
          if (this.#replacing.get(key) === pending) this.#replacing.delete(key);
        },
      );
      this.#replacing.set(key, pending);
    }
    return pending;
  }

  /**
   * Holding the lock: adopt another tab's fresh token if there is one, else create or reset.
   * A reset answered 409 `token_replaced` (`old` was already replaced, by someone who did not
   * store the replacement here) looks at the storage once more, then resets without a token:
   * the server never gives a replaced token a second new session.
   */
  async #replaceLocked(old, reason, create, call) {
    let present = true;
    for (let attempt = 0; ; attempt += 1) {
      const current = this.#store.get(STORAGE_KEY);
      if (current !== null && current !== old) {
        // Someone (another tab, or an earlier call here) stored a different token meanwhile.
        if (looksLikeToken(current)) {
          const answer = await this.#validate(current, call);
          if (answer.valid) return this.#adopt(current, this.#publicIdIn(answer.session, current));
          reason = toResetReason(answer.reason);
        } else {
          reason = RESET_REASONS.TAMPERED;
        }
        old = current;
        create = false;
      }
      if (create && old === null) {
        // Its Idempotency-Key makes repeats after no answer (or a blocked cross-origin answer)
        // one session, not one per attempt.
        const session = await this.#send("POST", "/sessions", {
          idempotencyKey: newClientMessageId(),
          timeout: call.timeout,
        });
        return this.#adopt(issuedToken(session), stringOrNull(session.id));
      }
      try {
        return await this.#resetFrom(old, reason, present, call);
      } catch (error) {
        if (attempt > 0 || !isTokenReplaced(error)) throw error;
        present = false;
      }
    }
  }

  /**
   * POST /session/reset presenting `old` (if it can be a token, and unless `present` is false),
   * adopt the answer, "reset".
   */
  async #resetFrom(old, reason, present, call) {
    const oldToken = looksLikeToken(old) ? old : null;
    const sent = present ? oldToken : null;
    const previousKnown = oldToken === null ? null : this.#knownPublicId(oldToken);
    const answer = await this.#send("POST", "/session/reset", {
      token: sent,
      body: { reason },
      idempotencyKey: newClientMessageId(),
      timeout: call.timeout,
    });
    const session = answer?.session;
    const token = this.#adopt(issuedToken(session), stringOrNull(session.id));
    this.dispatchEvent(
      makeEvent("reset", {
        notice: stringOrNull(answer.notice) ?? RESET_NOTICE,
        previousSessionId: stringOrNull(session.previous_session_id) ?? previousKnown,
        sessionId: this.#publicId,
        reason,
      }),
    );
    return token;
  }

  /** Store `token` and its public id (the token first: see #storageChanged), and use them. */
  #adopt(token, publicId) {
    this.#store.set(STORAGE_KEY, token);
    this.#store.set(PUBLIC_ID_KEY, publicId);
    this.#use(token, publicId);
    return token;
  }

  /** Use `token`; "session" when its public id differs from the one in use. */
  #use(token, publicId) {
    this.#token = token;
    if (publicId === this.#publicId) return;
    this.#publicId = publicId;
    this.dispatchEvent(makeEvent("session", { sessionId: publicId }));
  }

  /** The public id of the session `token` belongs to, as far as this client knows. */
  #knownPublicId(token) {
    if (token === null) return null;
    if (token === this.#token) return this.#publicId;
    if (token === this.#store.get(STORAGE_KEY)) return this.#store.get(PUBLIC_ID_KEY);
    return null;
  }

  /** The public id an answer's session names, else the one known for `token`. */
  #publicIdIn(session, token) {
    return stringOrNull(session?.id) ?? this.#knownPublicId(token);
  }

  /**
   * The stored token once no replacement holds the lock: a details call or a reset (here or
   * in another tab) that is storing a new token is waited for.
   */
  #settledToken() {
    return withResetLock(() => this.#store.get(STORAGE_KEY));
  }

  /**
   * Another tab wrote a key (or cleared the storage): take its token and public id. It writes
   * the token first, then the public id (one event each), so the "session" event comes when
   * both are there; a rotated token alone changes no public id and fires none. A value that
   * cannot be a token (junk another script wrote) is never used: the next call finds it in
   * the storage and replaces it with a fresh session (reason `tampered`).
   */
  #storageChanged(event) {
    if (event.key !== STORAGE_KEY && event.key !== PUBLIC_ID_KEY && event.key !== null) return;
    if (event.storageArea && event.storageArea !== this.#store.backing) return;
    const stored = stringOrNull(this.#store.get(STORAGE_KEY));
    const token = looksLikeToken(stored) ? stored : null;
    this.#use(token, token === null ? null : stringOrNull(this.#store.get(PUBLIC_ID_KEY)));
  }

  /**
   * Run a call that must concern the session this browser holds (export): when its token
   * proves unusable and no replacement of the same session exists, reject with
   * `session_replaced` (`session_expired`) rather than act on another session.
   */
  async #onHeldSession(work) {
    try {
      return await work();
    } catch (error) {
      const reason = unusableBecause(error);
      if (reason === null || reason === RESET_REASONS.NOT_FOUND) throw error;
      throw heldSessionLost(error, reason);
    }
  }

  /**
   * A holder call. Without a token yet, ensureSession() first. When the token proves unusable
   * (401 `session_invalid`, 409 `token_replaced`):
   * - replaced (`rotated`, `token_replaced`) and the storage holds another token (another tab
   *   gave details or reset, and stored the new one): take it and repeat the call once;
   * - otherwise replace it: a reset with the answer's reason (a `token_replaced` asks validate
   *   what became of the token first), unless another tab stored a valid token meanwhile; then
   *   repeat the call once with the new token.
   * `retryAfterReset: false` (a call about one file of the session) repeats only on the same
   * session. At most three requests in all: this never loops.
   * `rotates` (details): the answer carries the session's new token; the call holds the reset
   * lock until it is stored, so calls and tabs that find their token replaced wait for it.
   */
  async #holder(method, path, { retryAfterReset = true, rotates = false, ...request } = {}) {
    const call = { signal: request.signal, timeout: request.timeout };
    let token = this.#token ?? (await this.#establishShared(call));
    let followed = false;
    let replaced = false;
    for (;;) {
      const sessionOfToken = this.#knownPublicId(token);
      try {
        return await this.#holderSend(method, path, token, rotates, request);
      } catch (error) {
        const reason = unusableBecause(error);
        if (reason === null) throw error;
        let fresh = null;
        if (!followed && isReplacement(reason)) {
          followed = true;
          const stored = await raceAbort(this.#settledToken(), call.signal);
          if (stored !== token && looksLikeToken(stored)) {
            this.#use(stored, this.#store.get(PUBLIC_ID_KEY));
            fresh = stored;
          }
        }
        if (fresh === null) {
          if (replaced) throw error;
          replaced = true;
          fresh = await raceAbort(this.#replacement(token, reason, call), call.signal);
        }
        const sameSession = sessionOfToken !== null && this.#publicId === sessionOfToken;
        if (!retryAfterReset && !sameSession) throw error;
        token = fresh;
      }
    }
  }

  /** One holder request; a rotating one stores the answer's new token before the lock goes. */
  #holderSend(method, path, token, rotates, request) {
    if (!rotates) return this.#send(method, path, { ...request, token });
    return withResetLock(async () => {
      const answer = await this.#send(method, path, { ...request, token });
      if (looksLikeToken(answer?.token)) {
        this.#adopt(answer.token, stringOrNull(answer.id) ?? this.#knownPublicId(token));
      }
      return answer;
    });
  }

  /** The token to use instead of `token`, unusable for `reason`: a reset, or another tab's. */
  async #replacement(token, reason, call) {
    let why = reason;
    if (why === TOKEN_REPLACED) {
      // Replaced while the call waited, and no newer token stored: what became of it?
      const answer = await this.#validate(token, call);
      if (answer.valid) return token;
      why = answer.reason;
    }
    return this.#replace(token, toResetReason(why), false, call);
  }

  /**
   * One API call with its retries. A 429 waits its Retry-After (any call: it was refused
   * before anything happened). No answer, a timeout and 502/503/504 (after Retry-After, else
   * a backoff doubling from retryBaseMs to 10 s, jittered) are retried when the call is
   * repeatable: `idempotent`, or carrying `idempotencyKey`. Each wait is announced
   * ("waiting"); one longer than maxWaitMs, or after maxRetries retries, rejects with the
   * answer's error and its `retryAt`. `signal` rejects with `aborted` at any point. Resolves
   * with the JSON body, or with the response itself (`stream`: Accept `text/event-stream`;
   * `timeout` then bounds the wait for its headers only).
   */
  async #send(
    method,
    path,
    {
      token = null,
      body,
      idempotent = false,
      idempotencyKey = null,
      headers: extra = {},
      signal,
      timeout,
      stream = false,
    } = {},
  ) {
    const url = `${this.#baseUrl}${API_PREFIX}${path}`;
    const headers = { Accept: stream ? "text/event-stream" : "application/json", ...extra };
    if (token !== null) headers["X-Session-ID"] = token;
    if (idempotencyKey !== null) headers["Idempotency-Key"] = idempotencyKey;
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const repeatable = idempotent || idempotencyKey !== null;
    const timeoutMs = timeout ?? this.#timeoutMs;
    for (let retry = 0; ; retry += 1) {
      if (signal?.aborted) throw abortedError();
      let failure;
      let waitMs = null;
      let reason = "unavailable";
      try {
        const { response, text } = await this.#attempt(url, init, signal, timeoutMs, stream);
        if (response.ok) return stream ? response : parseBody(response, text);
        failure = errorFrom(response, text);
        if (response.status === 429) {
          reason = "rate_limited";
          waitMs = retryAfterMs(response) ?? this.#backoff(retry);
        } else if (repeatable && RETRYABLE_STATUSES.has(response.status)) {
          waitMs = retryAfterMs(response) ?? this.#backoff(retry);
        }
      } catch (error) {
        if (!(error instanceof SessionServiceError) || error.code === "aborted") throw error;
        failure = error; // no answer in time, or none at all
        if (repeatable) waitMs = this.#backoff(retry);
      }
      if (waitMs === null) throw failure;
      failure.retryAt = Date.now() + waitMs;
      if (retry >= this.#maxRetries || waitMs > this.#maxWaitMs) throw failure;
      this.dispatchEvent(
        makeEvent("waiting", {
          reason,
          retryAt: failure.retryAt,
          delayMs: waitMs,
          code: failure.code,
        }),
      );
      await this.#wait(waitMs, signal);
    }
  }

  /**
   * One request under `signal` and a `timeoutMs` timer; resolves with the response and, but
   * for an open stream, its whole text. No answer is `cors_or_network` (a browser does not
   * say whether the network or a CORS refusal failed), a timer that fires `timeout`.
   */
  async #attempt(url, init, signal, timeoutMs, stream) {
    const controller = new AbortController();
    const cancel = () => controller.abort();
    signal?.addEventListener("abort", cancel, { once: true });
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs)
        : null;
    let keepListening = false;
    try {
      const response = await this.#fetch(url, { ...init, signal: controller.signal });
      if (stream && response.ok) {
        keepListening = true; // the caller's signal still ends the stream
        return { response, text: "" };
      }
      let text = "";
      try {
        text = await response.text();
      } catch (error) {
        // A failed answer's body that breaks off still has a status; a success's does not count.
        if (response.ok) throw error;
      }
      return { response, text };
    } catch (error) {
      if (signal?.aborted) throw abortedError();
      if (timedOut) {
        throw new SessionServiceError("timeout", {
          detail: `no answer within ${timeoutMs} ms`,
          cause: error,
        });
      }
      if (error instanceof SessionServiceError) throw error;
      throw new SessionServiceError("cors_or_network", { detail: NO_ANSWER, cause: error });
    } finally {
      clearTimeout(timer);
      if (!keepListening) signal?.removeEventListener("abort", cancel);
    }
  }

  /** The delay before retry `retry` + 1: doubling from retryBaseMs, capped, jittered. */
  #backoff(retry) {
    const delay = Math.min(this.#retryBaseMs * 2 ** retry, MAX_BACKOFF_MS);
    return Math.round(delay * (0.5 + Math.random() * 0.5)); // clients part ways after an outage
  }

  /** Sleep `ms`; `signal` rejects it at once with `aborted`. */
  #wait(ms, signal) {
    return raceAbort(this.#pause(ms, signal ?? new AbortController().signal), signal);
  }

  /** Wait `ms`, or less when `signal` aborts (an injected sleep is raced with it). */
  #pause(ms, signal) {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let timer = null;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      if (this.#sleep === defaultSleep) timer = setTimeout(done, ms);
      else this.#sleep(ms).then(done, done);
    });
  }

  /** POST the slot's form to storage with XMLHttpRequest (fetch reports no upload progress). */
  #postForm(upload, file, name, onProgress, signal) {
    const Xhr = globalThis.XMLHttpRequest;
    if (typeof Xhr !== "function") {
      return Promise.reject(
        new SessionServiceError("upload_failed", { detail: "XMLHttpRequest is not available" }),
      );
    }
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [field, value] of Object.entries(upload.fields ?? {})) form.append(field, value);
      form.append("file", file, name); // last: storage ignores fields after the file
      const xhr = new Xhr();
      let settled = false;
      const settle = (error) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => {
        settle(abortedError());
        try {
          xhr.abort();
        } catch {
          // Already finished.
        }
      };
      // No X-Session-ID, no custom header: the session token never goes to the storage. (On S3,
      // an upload progress listener makes the cross-origin POST preflighted: the bucket's
      // CORS rule must allow POST from the page's origin.)
      xhr.open("POST", this.#absolute(upload.url));
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = (event) =>
          onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
      }
      xhr.onload = () => settle(xhr.status >= 200 && xhr.status < 300 ? null : storageError(xhr));
      xhr.onerror = () =>
        settle(
          new SessionServiceError("cors_or_network", {
            detail:
              "the file storage gave no answer: the network failed, or the browser refused " +
              "its answer because the storage does not allow this page's origin (CORS rules)",
          }),
        );
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = () => settle(abortedError());
      signal?.addEventListener("abort", onAbort, { once: true });
      xhr.send(form);
    });
  }

  /** Resolve a URL the service handed out (relative on the local backend) to an absolute one. */
  #absolute(url) {
    const here = globalThis.location?.href;
    try {
      const base = this.#baseUrl ? new URL(this.#baseUrl, here) : here;
      return base ? new URL(url, base).href : url;
    } catch {
      return url;
    }
  }
}
