// A page's use of the whole public API, type-checked against session-client.d.ts
// (`tsc --noEmit -p tests/web`). Never run: it only has to compile, and the
// `@ts-expect-error` lines have to stay errors.
import {
  CLIENT_MESSAGES,
  EventStreamParser,
  GENERIC_MESSAGE,
  MESSAGES,
  PUBLIC_ID_KEY,
  RESET_NOTICE,
  STORAGE_KEY,
  SessionClient,
  SessionServiceError,
  messageFor,
  type Conversation,
  type ErrorCode,
  type Message,
  type MessagePage,
  type Role,
  type ServerSentEvent,
  type SubscriptionStatus,
  type Unsubscribe,
  type ResetEventDetail,
  type WaitingEventDetail,
  type ResetReason,
  type Session,
  type SessionExport,
  type SessionFile,
} from "../../../src/session_service/web/client/session-client.js";

const client = new SessionClient({
  baseUrl: "https://sessions.example",
  storage: window.localStorage,
  fetch: window.fetch.bind(window),
  maxRetries: 2,
  retryBaseMs: 250,
  timeoutMs: 10_000,
  maxWaitMs: 20_000,
  sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
});
const inMemory = new SessionClient({ storage: null });
const sameOrigin = new SessionClient();

client.addEventListener("reset", (event) => {
  const detail: ResetEventDetail = event.detail;
  const reason: ResetReason = detail.reason;
  const text: string = detail.notice === RESET_NOTICE ? detail.notice : RESET_NOTICE;
  const previous: string | null = detail.previousSessionId;
  console.info(text, reason, previous, detail.sessionId.length);
});
client.addEventListener("session", (event) => {
  const id: string | null = event.detail.sessionId;
  if (id !== null) console.info(id.toUpperCase());
});
client.addEventListener("waiting", (event) => {
  const detail: WaitingEventDetail = event.detail;
  const seconds = Math.ceil((detail.retryAt - Date.now()) / 1000);
  const what = detail.reason === "rate_limited" ? "Too many requests" : "Service unavailable";
  console.info(`${what}, retrying in ${seconds} s`, detail.delayMs, detail.code);
});
// Any other event type still takes a plain listener.
client.addEventListener("other", (event: Event) => console.info(event.type));

function show(error: unknown): string {
  if (error instanceof SessionServiceError) {
    const status: number = error.status;
    const reference: string | null = error.requestId ?? client.lastRequestId;
    const reason = error.problem?.reason;
    const code: ErrorCode = error.code;
    if (code === "rate_limited" && error.retryAt !== null) console.info(new Date(error.retryAt));
    if (code === "aborted") return "";
    console.info(status, reference, reason, error.detail, code);
    return error.userMessage;
  }
  return messageFor("internal_error");
}

async function page(pdf: File, controller: AbortController): Promise<void> {
  const id: string = await client.start();
  const again: string = await client.ensureSession();
  const current: string | null = client.sessionId;
  // The support reference; the token under STORAGE_KEY stays with the module.
  const reference: string | null = localStorage.getItem(PUBLIC_ID_KEY);
  console.info(id === again, current === reference, localStorage.getItem(STORAGE_KEY) !== null);

  const session: Session = await client.getSession({ signal: controller.signal, timeout: 5000 });
  if (session.status === "pending_verification") console.info(session.email ?? "");

  try {
    const uploaded: SessionFile = await client.uploadFile(pdf, {
      signal: controller.signal,
      timeout: 20_000,
      onProgress: (loaded, total) => console.info(Math.round((loaded / total) * 100)),
    });
    console.info(uploaded.status === "uploaded", uploaded.stored_size);
  } catch (error) {
    show(error);
  }
  await client.uploadFile(new Blob(["%PDF-1.7"], { type: "application/pdf" }));

  const files: SessionFile[] = await client.listFiles();
  for (const file of files) {
    const url: string = await client.downloadUrl(file.id);
    console.info(url);
    await client.deleteFile(file.id);
  }

  const updated: Session = await client.submitDetails({
    name: "Ada Lovelace",
    email: "ada@example.com",
    consent: true,
  });
  console.info(updated.consent_given_at);

  const data: SessionExport = await client.exportData();
  const links: Array<string | null> = data.files.map((file) => file.download_url);
  console.info(data.format, links, data.audit_events[0]?.type);

  const fresh: string = await client.reset("user_requested");
  await inMemory.reset();
  console.info(fresh);
  await client.erase({ signal: AbortSignal.timeout(10_000) });
  sameOrigin.close();

  const code: ErrorCode = "upload_rejected";
  const replaced: ErrorCode = "token_replaced";
  const upgraded: ResetReason = "upgraded";
  console.info(MESSAGES[replaced], upgraded);
  const messages: string[] = [
    MESSAGES[code],
    MESSAGES.rate_limited,
    CLIENT_MESSAGES.cors_or_network,
    messageFor("some_future_code"),
    messageFor(null),
    GENERIC_MESSAGE,
  ];
  console.info(messages, new SessionServiceError("cors_or_network", { status: 0 }).userMessage);
}

async function wrongCalls(): Promise<void> {
  // @ts-expect-error: a file name is not a file
  await client.uploadFile("report.pdf");
  // @ts-expect-error: a timeout is a number of milliseconds
  await client.listFiles({ timeout: "15s" });
  // @ts-expect-error: codes are the documented ones
  new SessionServiceError("network_eror");
  // @ts-expect-error: not a reason the server accepts
  await client.reset("because");
  // @ts-expect-error: consent is a boolean, and it is required
  await client.submitDetails({ name: "Ada", email: "ada@example.com" });
  // @ts-expect-error: the session id is read-only
  client.sessionId = "4f0c0a4e-0000-4000-8000-000000000000";
  const session = await client.submitDetails({ name: "Ada", email: "a@x.example", consent: true });
  // @ts-expect-error: the token is never part of a public type
  console.info(session.token);
  client.addEventListener("session", (event) => {
    // @ts-expect-error: events carry the public id only
    console.info(event.detail.token);
  });
  // @ts-expect-error: MESSAGES holds only the README's codes
  console.info(MESSAGES.network_error);
  // @ts-expect-error: unknown option
  new SessionClient({ baseURL: "https://sessions.example" });
  client.addEventListener("reset", (event) => {
    // @ts-expect-error: a reset event's detail has no `id`
    console.info(event.detail.id);
  });
}

async function chat(pdf: SessionFile, log: HTMLOListElement): Promise<Unsubscribe> {
  const existing: Conversation[] = await client.conversations();
  const conversation: Conversation =
    existing.at(-1) ?? (await client.createConversation({ title: "Quarterly report" }));
  await client.createConversation();
  const latest: MessagePage = await client.messages(conversation.id, { limit: 50 });
  const older: MessagePage | null =
    latest.next_before === null
      ? null
      : await client.messages(conversation.id, { before: latest.next_before });
  const newer: MessagePage = await client.messages(conversation.id, { after: 0, limit: 200 });
  console.info(older?.messages.length, newer.next_after);

  const sent: Message = await client.send(conversation.id, "Can you summarise it?", {
    attachments: [pdf.id],
    metadata: { source: "demo" },
  });
  const again: Message = await client.send(conversation.id, "Can you summarise it?", {
    clientMessageId: sent.client_message_id ?? "m-1",
  });
  console.info(sent.seq === again.seq, sent.attachments[0]);

  const newest = latest.messages[0]?.seq ?? 0;
  return client.subscribe(
    conversation.id,
    (message) => {
      const role: Role = message.role;
      const item = document.createElement("li");
      item.dataset.seq = String(message.seq);
      item.textContent = `${role}: ${message.content}`;
      log.append(item);
    },
    {
      after: newest,
      onError: (error) => console.info(error.userMessage, error.code === "conversation_not_found"),
      onStatus: (status: SubscriptionStatus) => console.info(status),
      pollIntervalMs: 5000,
      idleTimeoutMs: 45_000,
    },
  );
}

function parse(chunk: string): string[] {
  const parser = new EventStreamParser();
  const events: ServerSentEvent[] = parser.push(chunk);
  const retry: number | null = parser.retry;
  console.info(parser.lastEventId, retry);
  return events.filter((event) => event.type === "message").map((event) => event.data);
}

async function wrongChatCalls(conversation: Conversation): Promise<void> {
  // @ts-expect-error: the text is a string
  await client.send(conversation.id, { content: "hi" });
  // @ts-expect-error: attachments are file ids
  await client.send(conversation.id, "hi", { attachments: [42] });
  // @ts-expect-error: a window names seqs, not dates
  await client.messages(conversation.id, { before: "2026-01-01" });
  // @ts-expect-error: the browser sends role `user` only; there is no role option
  await client.send(conversation.id, "hi", { role: "assistant" });
  const stop = client.subscribe(conversation.id, (message) => {
    // @ts-expect-error: not a role
    const role: "visitor" = message.role;
    console.info(role);
  });
  // @ts-expect-error: unsubscribing takes no argument and returns nothing to await
  const result: Promise<void> = stop();
  // @ts-expect-error: no such status
  const status: SubscriptionStatus = "open";
  console.info(result, status);
}

export { chat, page, parse, show, wrongCalls, wrongChatCalls };
