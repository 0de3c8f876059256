// A React app's use of the bindings, type-checked against react.d.ts (`tsc --noEmit -p
// tests/web`). Never run: it only has to compile, and the `@ts-expect-error` lines have to
// stay errors. (tests/web/test_react.py runs a similar app in Chromium.)
import { StrictMode, useState, type ChangeEvent, type FormEvent, type ReactNode } from "react";
import { createRoot } from "react-dom/client";

import {
  ResetNotice,
  SessionProvider,
  useConversation,
  useSession,
  useUpload,
  type ResetNoticeRenderProps,
  type SessionState,
  type SessionWaiting,
  type UploadProgress,
  type UseConversation,
  type UseSession,
  type UseUpload,
} from "../../../src/session_service/web/client/react.js";
import {
  RESET_NOTICE,
  SessionClient,
  type Message,
  type SessionFile,
  type SessionServiceError,
  type SubscriptionStatus,
} from "../../../src/session_service/web/client/session-client.js";

function SessionBadge(): ReactNode {
  const session: UseSession = useSession();
  const status: SessionState = session.status;
  const waiting: SessionWaiting | null = session.waiting;
  const error: SessionServiceError | null = session.error;
  const client: SessionClient = session.client;
  // @ts-expect-error: there is no token to show, only the public id
  console.info(session.token);
  // @ts-expect-error: the client keeps its token to itself
  console.info(client.token);
  if (status === "starting") return <p>Starting…</p>;
  if (error !== null) {
    return (
      <p role="alert">
        {error.userMessage} (reference {error.requestId ?? "none"})
        <button type="button" onClick={() => void session.start()}>
          Try again
        </button>
      </p>
    );
  }
  const seconds = waiting === null ? 0 : Math.ceil((waiting.retryAt - Date.now()) / 1000);
  return (
    <p>
      Session <code>{session.sessionId ?? "—"}</code>
      {waiting?.reason === "rate_limited" ? ` (busy, retrying in ${seconds} s)` : null}
      <button type="button" onClick={() => void session.reset()}>
        Start over
      </button>
      <button type="button" onClick={() => void session.reset("tampered")}>
        Reset
      </button>
    </p>
  );
}

function Uploader({ onUploaded }: { onUploaded: (file: SessionFile) => void }): ReactNode {
  const { upload, progress, uploading, cancel, error, reset }: UseUpload = useUpload();
  const shown: UploadProgress | null = progress;
  async function pick(event: ChangeEvent<HTMLInputElement>): Promise<void> {
    const file = event.target.files?.[0];
    if (file === undefined) return;
    const stored = await upload(file);
    if (stored !== null) onUploaded(stored);
  }
  // @ts-expect-error: upload takes a file, not a path
  void upload("report.pdf");
  return (
    <div>
      <input type="file" accept="application/pdf" onChange={(event) => void pick(event)} />
      {shown !== null && <progress max={shown.total} value={shown.loaded} />}
      {uploading && (
        <button type="button" onClick={cancel}>
          Cancel
        </button>
      )}
      {error !== null && (
        <p role="alert">
          {error.userMessage}
          <button type="button" onClick={reset}>
            OK
          </button>
        </p>
      )}
    </div>
  );
}

interface ChatProps {
  conversationId: string;
  attachment: string | null;
}

function Chat({ conversationId, attachment }: ChatProps): ReactNode {
  const chat: UseConversation = useConversation(conversationId);
  const live: SubscriptionStatus | null = chat.live;
  const [text, setText] = useState("");
  async function submit(event: FormEvent<HTMLFormElement>): Promise<void> {
    event.preventDefault();
    const options = attachment === null ? {} : { attachments: [attachment] };
    const sent: Message | null = await chat.send(text, options);
    if (sent !== null) setText("");
  }
  // @ts-expect-error: messages are read-only; sending goes through send()
  chat.messages.push({} as Message);
  // @ts-expect-error: attachments are file ids
  void chat.send("hi", { attachments: [1] });
  return (
    <section aria-busy={chat.loading}>
      <ol aria-live="polite">
        {chat.messages.map((message) => (
          <li key={message.id} data-seq={message.seq} className={message.role}>
            {message.content}
          </li>
        ))}
      </ol>
      <p>{live === "live" ? "Live" : live === "polling" ? "Checking for replies" : ""}</p>
      {chat.error !== null && <p role="alert">{chat.error.userMessage}</p>}
      <form onSubmit={(event) => void submit(event)}>
        <input aria-label="Message" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit" disabled={chat.sending}>
          Send
        </button>
      </form>
    </section>
  );
}

function Notice({ notice, dismiss, detail }: ResetNoticeRenderProps): ReactNode {
  const same: boolean = notice === RESET_NOTICE;
  return (
    <aside role="status" data-reason={detail.reason} data-same={same}>
      {notice} <button onClick={dismiss}>Close</button>
    </aside>
  );
}

function App(): ReactNode {
  const [file, setFile] = useState<SessionFile | null>(null);
  useConversation(null);
  useConversation(undefined);
  return (
    <>
      <ResetNotice />
      <ResetNotice className="notice" render={Notice} />
      <SessionBadge />
      <Uploader onUploaded={setFile} />
      <Chat conversationId="c0ffee00-0000-4000-8000-000000000000" attachment={file?.id ?? null} />
    </>
  );
}

const client = new SessionClient();
const root = createRoot(document.getElementById("root")!);
root.render(
  <StrictMode>
    <SessionProvider client={client}>
      <App />
    </SessionProvider>
    <SessionProvider client={client} autoStart={false}>
      <App />
    </SessionProvider>
  </StrictMode>,
);
// @ts-expect-error: a provider needs a client
const missing = <SessionProvider>{null}</SessionProvider>;
// @ts-expect-error: autoStart is a boolean
const wrong = <SessionProvider client={client} autoStart="yes" />;
void [missing, wrong];
