/**
 * Type declarations for react.js, the React bindings of session-client.js
 * (`@session-service/client/react`; React 18 or later):
 *
 *     import { SessionClient } from "@session-service/client";
 *     import { ResetNotice, SessionProvider, useSession } from "@session-service/client/react";
 *
 * Nothing here carries the session token: `sessionId` is the public id.
 */

import type { ReactElement, ReactNode } from "react";
import type {
  Message,
  ResetEventDetail,
  ResetReason,
  SendOptions,
  SessionClient,
  SessionFile,
  SessionServiceError,
  SubscriptionStatus,
  WaitingEventDetail,
} from "./session-client.js";

/** What the client waits for before a retry: its "waiting" event's detail. */
export type SessionWaiting = WaitingEventDetail;

/** `starting` until the first start() settles; `error` when it failed (see `error`). */
export type SessionState = "starting" | "ready" | "error";

export interface SessionProviderProps {
  client: SessionClient;
  /** Call `client.start()` on mount; default true. */
  autoStart?: boolean | undefined;
  children?: ReactNode;
}

/** Provides the client to the hooks below and follows its events. */
export declare function SessionProvider(props: SessionProviderProps): ReactElement;

export interface UseSession {
  status: SessionState;
  /** The PUBLIC id of the session in use (never the token); null before it is known. */
  sessionId: string | null;
  /** Why the last start() or reset() failed; null otherwise. */
  error: SessionServiceError | null;
  /** Set while the client waits to retry a call; null otherwise. */
  waiting: SessionWaiting | null;
  /** Start (or check) the session; the public id, or null with `error` set. Never rejects. */
  start(): Promise<string | null>;
  /** Replace the session (default reason `user_requested`: no notice shown). Never rejects. */
  reset(reason?: ResetReason): Promise<string | null>;
  client: SessionClient;
}

export declare function useSession(): UseSession;

export interface UploadProgress {
  /** Bytes of the upload request sent so far. */
  loaded: number;
  total: number;
}

export interface UseUpload {
  /** The uploaded file; null when cancelled or failed (then `error`). Never rejects. */
  upload(file: Blob & { name?: string }): Promise<SessionFile | null>;
  /** Null until the first bytes go out. */
  progress: UploadProgress | null;
  uploading: boolean;
  /** Cancel the upload in flight: it resolves null, with no error. */
  cancel(): void;
  /** Null after a cancellation. */
  error: SessionServiceError | null;
  /** Cancel, and forget progress and error. */
  reset(): void;
}

/** One upload at a time (a new one cancels the previous); unmounting cancels. */
export declare function useUpload(): UseUpload;

export interface UseConversation {
  /** Ordered by `seq`, each message once. */
  messages: readonly Message[];
  /** The stored message (also appended to `messages`), or null (then `error`). */
  send(text: string, options?: SendOptions): Promise<Message | null>;
  sending: boolean;
  /** Loading the history. */
  loading: boolean;
  /** The last failure: loading, following (the subscription ended), or sending. */
  error: SessionServiceError | null;
  /** The live subscription's status; null before it starts. */
  live: SubscriptionStatus | null;
}

/** The conversation's newest page of history, then its new messages live. */
export declare function useConversation(conversationId: string | null | undefined): UseConversation;

export interface ResetNoticeRenderProps {
  /** The text to show: RESET_NOTICE, as the reset carried it. */
  notice: string;
  detail: ResetEventDetail;
  dismiss(): void;
}

export interface ResetNoticeProps {
  /** On the wrapper of the default markup. */
  className?: string | undefined;
  /** Replaces the default markup (a `role="status"` paragraph and a "Dismiss" button). */
  render?: ((props: ResetNoticeRenderProps) => ReactNode) | undefined;
}

/** Nothing until the client resets the session, then its notice until dismissed. */
export declare function ResetNotice(props: ResetNoticeProps): ReactElement | null;
