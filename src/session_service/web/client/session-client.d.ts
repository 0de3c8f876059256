/**
 * Type declarations for session-client.js, the dependency-free browser module of
 * session-service (SPEC §9). Import the `.js` file; TypeScript picks these up next to it:
 *
 *     import { SessionClient } from "/static/session-client.js";
 *
 * A session has a public id (`sessionId`, event details, `Session.id`: not a secret, the
 * reference to quote to support) and a secret token the module keeps to itself: no declared
 * type, result or event carries it.
 */

/**
 * localStorage key holding the session TOKEN (a bearer secret: never show it or put it in a
 * URL). Its name is older than tokens: a session id an older version stored there is
 * answered `upgraded` and replaced by a reset.
 */
export declare const STORAGE_KEY: "session-service.session-id";

/** localStorage key holding the session's public id (not a secret), written with the token. */
export declare const PUBLIC_ID_KEY: "session-service.session-public-id";

/** The notice to show after a reset (the server answers the same text). */
export declare const RESET_NOTICE:
  "Your session has been reset due to a technical issue. Please start again.";

/** Every error `code` the service answers (docs/errors.md). */
export type ServerErrorCode =
  | "validation_error"
  | "malformed_json"
  | "malformed_request"
  | "idempotency_key_invalid"
  | "idempotency_key_reused"
  | "idempotency_key_in_use"
  | "session_invalid"
  | "token_replaced"
  | "session_exists"
  | "client_tokens_disabled"
  | "weak_client_token"
  | "unsupported_content_type"
  | "file_too_large"
  | "upload_rejected"
  | "file_limit_reached"
  | "quota_exceeded"
  | "upload_missing"
  | "file_not_uploaded"
  | "file_not_found"
  | "upload_form_invalid"
  | "upload_empty"
  | "upload_token_invalid"
  | "upload_expired"
  | "upload_policy_violation"
  | "upload_too_large"
  | "upload_already_used"
  | "download_refused"
  | "storage_unavailable"
  | "unauthorized"
  | "forbidden"
  | "auth_not_configured"
  | "session_not_found"
  | "session_active"
  | "session_completed"
  | "session_reset"
  | "session_expired"
  | "invalid_cursor"
  | "not_found"
  | "method_not_allowed"
  | "payload_too_large"
  | "headers_too_large"
  | "too_many_headers"
  | "request_timeout"
  | "conversation_not_found"
  | "message_too_long"
  | "attachment_not_uploaded"
  | "conversation_limit_reached"
  | "session_inactive"
  | "stream_limit_reached"
  | "live_updates_unavailable"
  | "cleanup_running"
  | "cleanup_run_not_found"
  | "rate_limited"
  | "cors_rejected"
  | "invalid_host"
  | "internal_error"
  | "session_id_exhausted"
  | "database_unavailable"
  | "not_ready"
  | "server_busy";

/** Codes the module itself produces (no server answer carries them). */
export type ClientErrorCode =
  | "cors_or_network"
  | "timeout"
  | "aborted"
  | "service_unavailable"
  | "session_replaced"
  | "upload_failed"
  | "unexpected_response";

export type ErrorCode = ServerErrorCode | ClientErrorCode;

/**
 * Why a token is not usable (validate's `reason`, and `reason` of a 401 `session_invalid`).
 * `rotated`: replaced by the token a details answer carried; `upgraded`: a session id stored
 * by a version from before tokens.
 */
export type InvalidReason =
  | "malformed"
  | "not_found"
  | "expired"
  | "reset"
  | "rotated"
  | "upgraded";

/** The reasons `POST /api/v1/session/reset` accepts. */
export type ResetReason =
  | "missing"
  | "malformed"
  | "not_found"
  | "expired"
  | "reset"
  | "rotated"
  | "upgraded"
  | "tampered"
  | "user_requested";

/** One user-facing message per server error code. */
export declare const MESSAGES: Readonly<Record<ServerErrorCode, string>>;

/** Messages of the client-only codes. */
export declare const CLIENT_MESSAGES: Readonly<Record<ClientErrorCode, string>>;

/** The message for a code that neither table knows. */
export declare const GENERIC_MESSAGE: string;

/** The user message for an error code: MESSAGES, then CLIENT_MESSAGES, else GENERIC_MESSAGE. */
export declare function messageFor(code: ErrorCode | (string & {}) | null | undefined): string;

/** An RFC 9457 problem as the service answers it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  request_id?: string;
  /** `session_invalid`: an InvalidReason; `upload_rejected`: size/type/signature mismatch. */
  reason?: string;
  action?: string;
  [extra: string]: unknown;
}

export interface SessionServiceErrorInit {
  status?: number;
  requestId?: string | null;
  detail?: string | null;
  problem?: Problem | null;
  retryAt?: number | null;
  cause?: unknown;
}

/**
 * Every failure of a SessionClient call. Show `userMessage`; quote `requestId` to support.
 * Client-only codes: `cors_or_network` (no answer: the network, or a CORS refusal: the
 * browser does not say which), `timeout`, `aborted` (the caller's signal), `service_unavailable`
 * (a gateway's 502/503/504 without a problem), `session_replaced` (erase or export of a session
 * this browser no longer holds), `upload_failed`, `unexpected_response`.
 */
export declare class SessionServiceError extends Error {
  constructor(code: ErrorCode, init?: SessionServiceErrorInit);
  readonly name: "SessionServiceError";
  /** The problem's `code`, or a client-only code. */
  readonly code: ErrorCode;
  /** The HTTP status; 0 when no answer arrived (no answer, timeout, cancelled). */
  readonly status: number;
  /**
   * When the service may be asked again (epoch ms): set when a 429 or 503 asked for a wait
   * longer than `maxWaitMs`, or the retries ran out; else null.
   */
  retryAt: number | null;
  /** `X-Request-ID` of the answer (or the problem's `request_id`); null without an answer. */
  readonly requestId: string | null;
  /** messageFor(code). */
  readonly userMessage: string;
  readonly detail: string | null;
  readonly problem: Problem | null;
}

export type SessionStatus = "active" | "pending_verification" | "completed" | "reset" | "expired";

/** A session as its holder sees it (timestamps are ISO 8601 strings). Never its token. */
export interface Session {
  /** The public id: names the session (e.g. to support); grants nothing. */
  id: string;
  status: SessionStatus;
  created_at: string;
  updated_at: string;
  last_seen_at: string;
  expires_at: string | null;
  completed_at: string | null;
  consent_user_data: boolean;
  consent_given_at: string | null;
  previous_session_id: string | null;
  /** Present on `GET /session` and after submitDetails. */
  name?: string | null;
  email?: string | null;
}

export type FileStatus = "pending" | "uploaded" | "rejected";

export interface SessionFile {
  id: string;
  name: string;
  content_type: string;
  /** The declared size in bytes. */
  size: number;
  stored_size: number | null;
  status: FileStatus;
  /** `size_mismatch`, `type_mismatch` or `signature_mismatch` when rejected. */
  rejection_reason: string | null;
  created_at: string;
  uploaded_at: string | null;
}

export interface AuditEvent {
  id: number;
  occurred_at: string;
  type: string;
  session_id: string | null;
  request_id: string | null;
  client_ip: string | null;
  user_agent: string | null;
  outcome: string;
  details: Record<string, unknown>;
}

/** The GDPR export (`GET /api/v1/session/export`). */
export interface SessionExport {
  format: string;
  exported_at: string;
  session: Session;
  files: Array<SessionFile & { download_url: string | null }>;
  audit_events: AuditEvent[];
}

/** Who wrote a message: the visitor sends `user`; the agent backend adds the others. */
export type Role = "user" | "assistant" | "system" | "tool";

/** A conversation of the session (`GET /api/v1/session/conversations`). */
export interface Conversation {
  id: string;
  title: string | null;
  /** The newest message's `seq` (0: none yet). */
  last_seq: number;
  message_count: number;
  created_at: string;
  updated_at: string;
}

/** A stored message. */
export interface Message {
  id: string;
  conversation_id: string;
  /** Its place in the conversation: 1, 2, 3... without gaps. */
  seq: number;
  role: Role;
  content: string;
  /** Ids of uploaded files of the session. */
  attachments: string[];
  metadata: Record<string, unknown> | null;
  client_message_id: string | null;
  created_at: string;
}

/**
 * A page of messages: newest first by default and with `before`, oldest first with `after`.
 * Ask again with `before: next_before` (older) or `after: next_after` (newer).
 */
export interface MessagePage {
  messages: Message[];
  /** Older messages remain before this `seq` (null: this page reaches the first). */
  next_before: number | null;
  /** Newer messages may follow this `seq`. */
  next_after: number | null;
}

/** Which messages a page holds (each a `seq`; `limit` at most 200, default 50). */
export interface MessageWindow {
  before?: number;
  after?: number;
  limit?: number;
}

/**
 * What every method takes last. `signal` cancels the call at once (it rejects with
 * `aborted`, waits included, and sends nothing more); `timeout` bounds each request in ms
 * (default the client's `timeoutMs`; 0: none).
 */
export interface CallOptions {
  signal?: AbortSignal;
  timeout?: number;
}

export interface CreateConversationOptions extends CallOptions {
  /** 1 to 200 characters; omitted or null: none. */
  title?: string | null;
}

export interface SendOptions extends CallOptions {
  /** Ids of files of the session that finished uploading (at most 10). */
  attachments?: readonly string[];
  /** Small JSON (at most 4 KiB as JSON). */
  metadata?: Record<string, unknown> | null;
  /**
   * Sending the same id again returns the stored message instead of adding one (1 to 64 of
   * `A-Z a-z 0-9 . _ : -`). Default: a new UUID per call; the module's own retries reuse it.
   */
  clientMessageId?: string;
}

/**
 * What a subscription is doing: `connecting` (first stream), `live` (stream open),
 * `reconnecting` (waiting to resume after an interruption), `polling` (the service has no
 * events route: asking for new messages every `pollIntervalMs`), `closed` (for good).
 */
export type SubscriptionStatus = "connecting" | "live" | "reconnecting" | "polling" | "closed";

export interface SubscribeOptions {
  /** Deliver the messages after this `seq`; default 0 (all). Pass the newest one shown. */
  after?: number;
  /**
   * Following cannot go on (e.g. `conversation_not_found`, or the session was replaced:
   * `session_invalid`); the subscription is closed. Interruptions are retried, not reported.
   */
  onError?: (error: SessionServiceError) => void;
  onStatus?: (status: SubscriptionStatus) => void;
  /** Period of the fallback's polling in ms; default 3000. */
  pollIntervalMs?: number;
  /** A stream silent this long (no message, no heartbeat) is reopened; default 60000 ms. */
  idleTimeoutMs?: number;
}

/** Stops a subscription (no call of `onMessage` follows); calling it again does nothing. */
export type Unsubscribe = () => void;

/** One event of a `text/event-stream`. */
export interface ServerSentEvent {
  /** The `event` field; "message" when none. */
  type: string;
  /** The `data` lines joined with "\n". */
  data: string;
  /** The last `id` field so far ("" before any). */
  id: string;
}

/**
 * The module's incremental `text/event-stream` parser (the WHATWG rules: CRLF, LF or CR line
 * ends, split anywhere; comments skipped; multi-line data; `id` persists; `retry` digits only).
 */
export declare class EventStreamParser {
  /** Feed decoded text; returns the events this chunk completed. */
  push(chunk: string): ServerSentEvent[];
  /** The last `id` field seen ("" before any). */
  get lastEventId(): string;
  /** The last valid `retry` field in ms, or null. */
  get retry(): number | null;
}

export interface Details {
  name: string;
  email: string;
  /** Must be true: nothing personal is stored without consent (false answers validation_error). */
  consent: boolean;
}

export interface UploadOptions extends CallOptions {
  /** Called as bytes go out; `total` is the request's size (or the file's). */
  onProgress?: (loaded: number, total: number) => void;
}

export interface SessionClientOptions {
  /** Prefix of every API URL (`${baseUrl}/api/v1/...`); default "" (same origin). */
  baseUrl?: string;
  /** Where the token lives; default window.localStorage when usable, else memory. null: memory. */
  storage?: Storage | null;
  fetch?: typeof fetch;
  /** Retries of one request (429; no answer, timeout, 502/503/504 when repeatable); default 3. */
  maxRetries?: number;
  /** First retry backoff in ms, doubled per retry up to 10 s, jittered; default 500. */
  retryBaseMs?: number;
  /** The longest one request may take, in ms (0: none); default 15000. */
  timeoutMs?: number;
  /** The longest wait sat out for a caller; a longer one rejects with `retryAt`. Default 30000. */
  maxWaitMs?: number;
  /** How to wait before a retry; default setTimeout. Tests inject a recorder. */
  sleep?: (ms: number) => Promise<void>;
}

export interface SessionEventDetail {
  /** The public id of the session now in use; null after erase (or while not known). */
  sessionId: string | null;
}

export interface ResetEventDetail {
  notice: string;
  /** The public id of the session replaced, when known. */
  previousSessionId: string | null;
  /** The public id of the new session. */
  sessionId: string;
  reason: ResetReason;
}

export interface WaitingEventDetail {
  /** `rate_limited`: a 429; `unavailable`: no answer, a timeout or a 502/503/504. */
  reason: "rate_limited" | "unavailable";
  /** When the call is sent again (epoch ms). */
  retryAt: number;
  delayMs: number;
  /** The code of the answer being waited out. */
  code: ErrorCode;
}

export interface SessionClientEventMap {
  /**
   * The session changed: created, reset, erased, or changed by another tab (not when only its
   * token was rotated).
   */
  session: CustomEvent<SessionEventDetail>;
  /** This client replaced an unusable session: show `detail.notice`. */
  reset: CustomEvent<ResetEventDetail>;
  /** A call waits before it is sent again: "Too many requests, retrying in 42 s". */
  waiting: CustomEvent<WaitingEventDetail>;
}

export declare class SessionClient extends EventTarget {
  constructor(options?: SessionClientOptions);

  /**
   * The PUBLIC id of the session in use (the support reference; never the token), or null
   * before start(), after erase() and while not known yet.
   */
  get sessionId(): string | null;
  /** X-Request-ID of the last call that failed (null when it got no answer). */
  get lastRequestId(): string | null;

  /**
   * On page load: validate the stored token (reset if invalid), or create a session.
   * Resolves with the public id.
   */
  start(options?: CallOptions): Promise<string>;
  /** Before each user action: validate (reset if invalid). Concurrent calls share one check. */
  ensureSession(options?: CallOptions): Promise<string>;
  /** Replace the session with a new one (one reset across callers and tabs); its public id. */
  reset(reason?: ResetReason, options?: CallOptions): Promise<string>;

  getSession(options?: CallOptions): Promise<Session>;
  listFiles(options?: CallOptions): Promise<SessionFile[]>;
  deleteFile(fileId: string, options?: CallOptions): Promise<void>;
  /** A short-lived absolute URL serving the file as an attachment. */
  downloadUrl(fileId: string, options?: CallOptions): Promise<string>;
  /** The answer's new token is stored at once (other tabs follow); it is not in the result. */
  submitDetails(details: Details, options?: CallOptions): Promise<Session>;
  /**
   * The export of the session this browser holds; `session_replaced` (`session_expired`)
   * when it was reset elsewhere (expired), never another session's.
   */
  exportData(options?: CallOptions): Promise<SessionExport>;
  /**
   * GDPR erasure of the held session and the sessions it replaced, then it is forgotten.
   * Rejects with `session_replaced` (`session_expired`) when the session was reset elsewhere
   * (expired) and this browser holds no replacement of it: nothing was erased.
   */
  erase(options?: CallOptions): Promise<void>;
  /**
   * Slot, direct upload (progress, cancel), completion: resolves with the `uploaded` file.
   * A cancel rejects with `aborted`; a slot already taken is deleted again.
   */
  uploadFile(file: Blob & { name?: string }, options?: UploadOptions): Promise<SessionFile>;

  /** The session's conversations, oldest first. */
  conversations(options?: CallOptions): Promise<Conversation[]>;
  /** Start a conversation in the session (an Idempotency-Key makes repeats safe). */
  createConversation(options?: CreateConversationOptions): Promise<Conversation>;
  /** A page of messages: the newest first by default; `after`: oldest first. */
  messages(conversationId: string, window?: MessageWindow & CallOptions): Promise<MessagePage>;
  /**
   * Send the visitor's message (role `user`); resolves with it as stored. Always sends a
   * `client_message_id` and an Idempotency-Key, the same ones on every retry (no answer,
   * 502/503/504, 429), so a retry never stores it twice.
   */
  send(conversationId: string, text: string, options?: SendOptions): Promise<Message>;
  /**
   * Follow a conversation live: each message after `options.after` once, in `seq` order,
   * without gaps, resuming after reconnects (polling where the service has no events route).
   */
  subscribe(
    conversationId: string,
    onMessage: (message: Message) => void,
    options?: SubscribeOptions,
  ): Unsubscribe;

  /** Stop following other tabs (removes the window "storage" listener). */
  close(): void;

  addEventListener<K extends keyof SessionClientEventMap>(
    type: K,
    listener: (this: SessionClient, event: SessionClientEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof SessionClientEventMap>(
    type: K,
    listener: (this: SessionClient, event: SessionClientEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
