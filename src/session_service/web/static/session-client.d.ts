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

/** Every error `code` the service answers (README, "Errors"). */
export type ServerErrorCode =
  | "validation_error"
  | "malformed_json"
  | "malformed_request"
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
  | "network_error"
  | "upload_cancelled"
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
  cause?: unknown;
}

/** Every failure of a SessionClient call. Show `userMessage`; quote `requestId` to support. */
export declare class SessionServiceError extends Error {
  constructor(code: ErrorCode | (string & {}), init?: SessionServiceErrorInit);
  readonly name: "SessionServiceError";
  /** The problem's `code`, or a client-only code. */
  readonly code: string;
  /** The HTTP status; 0 when no answer arrived (network error, cancelled upload). */
  readonly status: number;
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

export interface Details {
  name: string;
  email: string;
  /** Must be true: nothing personal is stored without consent (false answers validation_error). */
  consent: boolean;
}

export interface UploadOptions {
  /** Called as bytes go out; `total` is the request's size (or the file's). */
  onProgress?: (loaded: number, total: number) => void;
  /** Aborting rejects with SessionServiceError `upload_cancelled`. */
  signal?: AbortSignal;
}

export interface SessionClientOptions {
  /** Prefix of every API URL (`${baseUrl}/api/v1/...`); default "" (same origin). */
  baseUrl?: string;
  /** Where the token lives; default window.localStorage when usable, else memory. null: memory. */
  storage?: Storage | null;
  fetch?: typeof fetch;
  /** Retries after a 429 or a network error; default 3. */
  maxRetries?: number;
  /** First network-error backoff in ms, doubled per retry; default 500. */
  retryBaseMs?: number;
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

export interface SessionClientEventMap {
  /**
   * The session changed: created, reset, erased, or changed by another tab (not when only its
   * token was rotated).
   */
  session: CustomEvent<SessionEventDetail>;
  /** This client replaced an unusable session: show `detail.notice`. */
  reset: CustomEvent<ResetEventDetail>;
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
  start(): Promise<string>;
  /** Before each user action: validate (reset if invalid). Concurrent calls share one check. */
  ensureSession(): Promise<string>;
  /** Replace the session with a new one (one reset across callers and tabs); its public id. */
  reset(reason?: ResetReason): Promise<string>;

  getSession(): Promise<Session>;
  listFiles(): Promise<SessionFile[]>;
  deleteFile(fileId: string): Promise<void>;
  /** A short-lived absolute URL serving the file as an attachment. */
  downloadUrl(fileId: string): Promise<string>;
  /** The answer's new token is stored at once (other tabs follow); it is not in the result. */
  submitDetails(details: Details): Promise<Session>;
  exportData(): Promise<SessionExport>;
  /** GDPR erasure; then the session is forgotten (the next action creates a new one). */
  erase(): Promise<void>;
  /** Slot, direct upload (progress, cancel), completion: resolves with the `uploaded` file. */
  uploadFile(file: Blob & { name?: string }, options?: UploadOptions): Promise<SessionFile>;

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
