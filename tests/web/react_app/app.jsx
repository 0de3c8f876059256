// The React app tests/web/test_react.py runs in Chromium: the package's bindings
// (`@session-service/client/react`, resolved through its package.json) in real React under
// StrictMode, bundled by esbuild and served on the service's own origin.
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { SessionClient } from "@session-service/client";
import {
  ResetNotice,
  SessionProvider,
  useConversation,
  useSession,
  useUpload,
} from "@session-service/client/react";

const CONVERSATION_KEY = "react-test.conversation";

const client = new SessionClient();

// The client's listeners by event type, so the test sees unmounting remove them.
const listeners = new Map();
const addListener = client.addEventListener.bind(client);
const removeListener = client.removeEventListener.bind(client);
client.addEventListener = (type, listener, options) => {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(listener);
  addListener(type, listener, options);
};
client.removeEventListener = (type, listener, options) => {
  listeners.get(type)?.delete(listener);
  removeListener(type, listener, options);
};

function Session() {
  const { status, sessionId, error, waiting, start, reset } = useSession();
  return (
    <section aria-label="Session">
      <p>
        Status: <span id="status">{status}</span>
      </p>
      <p>
        Session: <span id="session-id">{sessionId ?? "none"}</span>
      </p>
      {waiting !== null && <p id="waiting">Waiting: {waiting.reason}</p>}
      {error !== null && <p role="alert">{error.userMessage}</p>}
      <button type="button" onClick={() => void start()}>
        Check session
      </button>
      <button type="button" onClick={() => void reset()}>
        Start over
      </button>
    </section>
  );
}

function Upload() {
  const { upload, progress, uploading, cancel, error } = useUpload();
  const [file, setFile] = useState(null);
  const [result, setResult] = useState("");
  async function submit(event) {
    event.preventDefault();
    setResult("");
    const stored = await upload(file);
    setResult(stored === null ? "none" : `${stored.name} ${stored.status}`);
  }
  if (progress !== null) window.progressSeen.push(progress);
  return (
    <form aria-label="Upload" onSubmit={(event) => void submit(event)}>
      <label>
        PDF <input type="file" onChange={(event) => setFile(event.target.files?.[0] ?? null)} />
      </label>
      <button type="submit">Upload</button>
      <button type="button" onClick={cancel} disabled={!uploading}>
        Cancel upload
      </button>
      <p>
        Uploading: <span id="uploading">{uploading ? "yes" : "no"}</span>
      </p>
      <p>
        Progress:{" "}
        <span id="progress">{progress ? `${progress.loaded}/${progress.total}` : "none"}</span>
      </p>
      <p>
        Result: <span id="upload-result">{result}</span>
      </p>
      {error !== null && (
        <p role="alert" id="upload-error">
          {error.code}: {error.userMessage}
        </p>
      )}
    </form>
  );
}

function Chat() {
  const [conversationId, setConversationId] = useState(() =>
    localStorage.getItem(CONVERSATION_KEY),
  );
  const { messages, send, sending, loading, error, live } = useConversation(conversationId);
  const [text, setText] = useState("");
  async function open() {
    const conversation = await client.createConversation({ title: "React" });
    localStorage.setItem(CONVERSATION_KEY, conversation.id);
    setConversationId(conversation.id);
  }
  async function submit(event) {
    event.preventDefault();
    if ((await send(text)) !== null) setText("");
  }
  if (conversationId === null) {
    return (
      <button type="button" onClick={() => void open()}>
        New conversation
      </button>
    );
  }
  return (
    <section aria-label="Chat">
      <p>
        Live: <span id="live">{live ?? "none"}</span>
        {loading && " (loading)"}
      </p>
      <ol id="messages">
        {messages.map((message) => (
          <li key={message.id} data-seq={message.seq} className={message.role}>
            {message.content}
          </li>
        ))}
      </ol>
      {error !== null && <p role="alert">{error.userMessage}</p>}
      <form onSubmit={(event) => void submit(event)}>
        <label>
          Message <input value={text} onChange={(event) => setText(event.target.value)} />
        </label>
        <button type="submit" disabled={sending}>
          Send
        </button>
      </form>
    </section>
  );
}

window.progressSeen = [];
const root = createRoot(document.getElementById("root"));
root.render(
  <StrictMode>
    <SessionProvider client={client}>
      <main>
        <ResetNotice className="notice" />
        <Session />
        <Upload />
        <Chat />
      </main>
    </SessionProvider>
  </StrictMode>,
);

window.reactTest = {
  client,
  listeners: () => Object.fromEntries([...listeners].map(([type, set]) => [type, set.size])),
  unmount: () => root.unmount(),
};
