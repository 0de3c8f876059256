// The demo page: every action goes through session-client.js, nothing else talks to the API.
// It shows the session's public id (the support reference), never its token: the token stays
// inside the module (and localStorage).
import { SessionClient, SessionServiceError, messageFor } from "./session-client.js";

const client = new SessionClient();
const $ = (id) => document.getElementById(id);
let uploadAbort = null;

// The chat shows one conversation of the session. Its id is kept in localStorage beside the
// session, with the public id of the session it belongs to, so that a reload and other tabs
// show the same conversation (and a new session starts a new one).
const CHAT_KEY = "session-service.demo.conversation";
const HISTORY_PAGE = 50;
const ROLE_NAMES = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };
const FOLLOWING = {
  connecting: "Connecting…",
  live: "Live: replies appear as they are written.",
  polling: "Replies appear within a few seconds.",
  reconnecting: "Connection lost: reconnecting…",
  closed: "",
};
const chat = {
  sessionId: undefined, // the session whose conversation is shown
  conversationId: null,
  generation: 0, // bumped whenever the chat is cleared: late answers for an old one are dropped
  loading: null, // the history being loaded
  stop: null, // stops following the conversation
  items: new Map(), // seq -> <li>
  oldest: null, // older messages remain before this seq
  draft: null, // {key, id}: a message not sent yet keeps its client_message_id for "Send" again
  sending: false,
};
let fileNames = new Map();

function say(id, text, kind = "") {
  const element = $(id);
  element.textContent = text;
  element.className = `status ${kind}`.trim();
}

/** The failure in the banner, with its request id for support; the message is returned. */
function showError(error) {
  hideWaiting();
  let message = error instanceof SessionServiceError ? error.userMessage : messageFor("internal_error");
  // A wait longer than the module sits out: say when trying again makes sense.
  const seconds = error instanceof SessionServiceError && error.retryAt ? secondsUntil(error.retryAt) : 0;
  if (seconds > 0) message = `${message} You can try again in ${seconds} s.`;
  $("error-message").textContent = message;
  const reference = error instanceof SessionServiceError ? error.requestId || client.lastRequestId : null;
  $("error-reference").textContent = reference ?? "";
  $("error-reference-line").hidden = !reference;
  $("error").hidden = false;
  return message;
}

function secondsUntil(at) {
  return Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

// While the module waits out a 429 or an outage before asking again, the page says so and
// counts down (the count is a timer: read out once, with the reason, not every second).
let waitingTimer = null;

function showWaiting({ reason, retryAt }) {
  $("waiting-reason").textContent =
    reason === "rate_limited" ? "Too many requests." : "The service is not answering.";
  const count = () => {
    const seconds = secondsUntil(retryAt);
    if (seconds === 0) hideWaiting();
    else $("waiting-seconds").textContent = String(seconds);
  };
  clearInterval(waitingTimer);
  count();
  $("waiting").hidden = secondsUntil(retryAt) === 0;
  waitingTimer = setInterval(count, 1000);
}

function hideWaiting() {
  clearInterval(waitingTimer);
  waitingTimer = null;
  $("waiting").hidden = true;
}

/** A new action starts, or one succeeded: an earlier failure (and its reference) is stale. */
function clearError() {
  $("error").hidden = true;
  $("error-message").textContent = "";
  $("error-reference").textContent = "";
  $("error-reference-line").hidden = true;
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function showSession() {
  try {
    const session = await client.getSession();
    $("session-status").textContent = session.status.replace("_", " ");
    $("session-id").textContent = client.sessionId ?? "—"; // the public id, never the token
    $("session-expires").textContent = session.expires_at
      ? new Date(session.expires_at).toLocaleString()
      : "never";
    showDetails(session);
  } catch (error) {
    showError(error);
  }
}

const DETAILS_STATE = {
  pending_verification: "Details received, awaiting verification.",
  completed: "Details verified: they can no longer be changed.",
};
let detailsShown = null; // {id, status}: the session whose details the form speaks of

/** Details given earlier (a reload, another tab) fill the form, which says where they stand. */
function showDetails(session) {
  if (session.id !== client.sessionId) return; // a late answer about a replaced session
  const state = session.name && session.email ? DETAILS_STATE[session.status] : undefined;
  if (!state) {
    // A new session (reset, erased): what was said of the old one's details no longer holds.
    if (detailsShown && detailsShown.id !== session.id) {
      say("details-status", "");
      detailsShown = null;
    }
    return;
  }
  if (detailsShown?.id === session.id && detailsShown.status === session.status) return; // said
  if ($("name").value === "" && $("email").value === "") {
    $("name").value = session.name;
    $("email").value = session.email;
  }
  say("details-status", state, "ok");
  detailsShown = { id: session.id, status: session.status };
}

async function showFiles() {
  const list = $("file-list");
  try {
    const files = await client.listFiles();
    list.replaceChildren(...files.map(fileItem));
    $("files-empty").hidden = files.length > 0;
    showAttachable(files);
  } catch (error) {
    showError(error);
  }
}

/** The uploaded files a message can attach, keeping the one chosen. */
function showAttachable(files) {
  fileNames = new Map(files.map((file) => [file.id, file.name]));
  const select = $("chat-attachment");
  const chosen = select.value;
  const options = files
    .filter((file) => file.status === "uploaded")
    .map((file) => new Option(file.name, file.id));
  select.replaceChildren(new Option("No attachment", ""), ...options);
  select.value = options.some((option) => option.value === chosen) ? chosen : "";
}

/* Chat ------------------------------------------------------------------------------------ */

function storedConversation(sessionId) {
  try {
    const stored = JSON.parse(localStorage.getItem(CHAT_KEY));
    return stored?.session === sessionId && typeof stored.conversation === "string"
      ? stored.conversation
      : null;
  } catch {
    return null;
  }
}

function rememberConversation(sessionId, conversationId) {
  try {
    const stored = { session: sessionId, conversation: conversationId };
    localStorage.setItem(CHAT_KEY, JSON.stringify(stored));
  } catch {
    // Without storage the chat still works; a reload starts a new conversation.
  }
}

function forgetConversation() {
  try {
    localStorage.removeItem(CHAT_KEY);
  } catch {
    // Nothing stored.
  }
}

function closeChat() {
  chat.generation += 1;
  chat.stop?.();
  chat.stop = null;
  chat.conversationId = null;
  chat.loading = null;
  chat.items.clear();
  chat.oldest = null;
  $("chat-messages").replaceChildren();
  $("chat-log").hidden = true;
  $("chat-empty").hidden = false;
  $("chat-earlier").hidden = true;
  $("chat-connection").textContent = "";
}

/** Show the conversation of the session in use (the stored one, if any), following it. */
function openChat(again = false) {
  const sessionId = client.sessionId;
  if (!again && sessionId === chat.sessionId) return; // shown, or on its way
  closeChat();
  chat.sessionId = sessionId;
  const conversationId = sessionId ? storedConversation(sessionId) : null;
  if (conversationId) {
    const generation = chat.generation;
    chat.loading = showConversation(conversationId, generation).catch((error) => {
      if (generation === chat.generation) showError(error);
    });
  }
}

/**
 * Its newest messages (the visitor's history after a reload), then every new one live. A
 * conversation that no longer exists is forgotten; any other failure is thrown.
 */
async function showConversation(conversationId, generation) {
  let page;
  try {
    page = await client.messages(conversationId, { limit: HISTORY_PAGE });
  } catch (error) {
    if (error instanceof SessionServiceError && error.code === "conversation_not_found") {
      if (generation === chat.generation) forgetConversation();
      return;
    }
    throw error;
  }
  if (generation !== chat.generation) return;
  chat.conversationId = conversationId;
  const log = $("chat-log");
  log.setAttribute("aria-busy", "true"); // the history is not news: announce new messages only
  for (const message of page.messages) addMessage(message);
  log.removeAttribute("aria-busy");
  chat.oldest = page.next_before;
  $("chat-earlier").hidden = chat.oldest === null;
  follow(conversationId, page.next_after ?? 0);
}

function follow(conversationId, after) {
  chat.stop = client.subscribe(
    conversationId,
    (message) => {
      if (chat.conversationId === conversationId) addMessage(message);
    },
    {
      after,
      onStatus: (status) => {
        if (chat.conversationId !== conversationId) return;
        $("chat-connection").textContent = FOLLOWING[status];
      },
      onError: (error) => {
        if (chat.conversationId !== conversationId) return;
        if (error.code === "session_invalid") return; // replaced: the "session" event follows
        if (error.code === "conversation_not_found") {
          forgetConversation();
          closeChat();
        }
        say("chat-status", showError(error), "bad");
      },
    },
  );
}

/** The conversation to send to: the one shown, else a new one, remembered for reloads. */
async function ensureConversation() {
  await client.ensureSession();
  openChat(); // a new session (reset, erased, another tab): start over
  await chat.loading;
  const generation = chat.generation;
  const stored = storedConversation(chat.sessionId);
  // Its history failed to load: try again (a failure is the send's), never start another.
  if (!chat.conversationId && stored) await showConversation(stored, generation);
  if (chat.conversationId) return chat.conversationId;
  const conversation = await client.createConversation();
  if (generation !== chat.generation) throw new SessionServiceError("session_reset");
  chat.conversationId = conversation.id;
  rememberConversation(chat.sessionId, conversation.id);
  follow(conversation.id, 0);
  return conversation.id;
}

function messageItem(message) {
  const item = document.createElement("li");
  item.className = `message ${message.role}`;
  item.dataset.seq = String(message.seq);
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = ROLE_NAMES[message.role] ?? message.role;
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = message.content;
  item.append(who, text);
  if (message.attachments.length > 0) {
    const attached = document.createElement("p");
    attached.className = "meta";
    const names = message.attachments.map((id) => fileNames.get(id) ?? "a file");
    attached.textContent = `Attached: ${names.join(", ")}`;
    item.append(attached);
  }
  const time = document.createElement("time");
  time.className = "meta";
  time.dateTime = message.created_at;
  time.textContent = new Date(message.created_at).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
  });
  item.append(time);
  return item;
}

/** Add a message in `seq` order, once (the send answer and the live feed both bring it). */
function addMessage(message) {
  if (chat.items.has(message.seq)) return;
  const log = $("chat-log");
  const list = $("chat-messages");
  const item = messageItem(message);
  chat.items.set(message.seq, item);
  const later = [...list.children].find((other) => Number(other.dataset.seq) > message.seq);
  list.insertBefore(item, later ?? null);
  log.hidden = false;
  $("chat-empty").hidden = true;
  if (!later) log.scrollTop = log.scrollHeight;
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (chat.sending) return;
  clearError();
  const input = $("chat-input");
  const text = input.value;
  if (text.trim() === "") {
    say("chat-status", "Type a message first.", "bad");
    input.focus();
    return;
  }
  const attachment = $("chat-attachment").value;
  const attachments = attachment ? [attachment] : [];
  // The same message sent again after a failure keeps its id: the service stores it once.
  const key = JSON.stringify([text, attachments]);
  if (chat.draft?.key !== key) chat.draft = { key, id: globalThis.crypto?.randomUUID?.() };
  chat.sending = true;
  $("chat-send").disabled = true;
  say("chat-status", "Sending…");
  try {
    const conversationId = await ensureConversation();
    const message = await client.send(conversationId, text, {
      attachments,
      clientMessageId: chat.draft.id,
    });
    if (chat.conversationId === conversationId) addMessage(message);
    chat.draft = null;
    $("chat-form").reset();
    say("chat-status", "Sent.", "ok");
  } catch (error) {
    say("chat-status", showError(error), "bad");
  } finally {
    chat.sending = false;
    $("chat-send").disabled = false;
    input.focus();
  }
});

$("chat-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("chat-form").requestSubmit();
  }
});

$("chat-earlier").addEventListener("click", async () => {
  const { conversationId, oldest } = chat;
  if (!conversationId || oldest === null) return;
  try {
    const page = await client.messages(conversationId, { before: oldest, limit: HISTORY_PAGE });
    if (chat.conversationId !== conversationId) return;
    for (const message of page.messages) addMessage(message);
    chat.oldest = page.next_before;
    if (chat.oldest === null) {
      $("chat-earlier").hidden = true;
      $("chat-log").focus(); // the button is gone: focus stays in the chat
    }
  } catch (error) {
    showError(error);
  }
});

// Another tab started (or switched to) a conversation of this session: show it here too.
window.addEventListener("storage", (event) => {
  if (event.key !== CHAT_KEY && event.key !== null) return;
  const conversationId = storedConversation(chat.sessionId);
  if (conversationId && conversationId !== chat.conversationId) openChat(true);
});

function fileItem(file) {
  const item = document.createElement("li");
  item.dataset.fileId = file.id;
  item.tabIndex = -1; // focused when its upload completes
  const text = document.createElement("div");
  const name = document.createElement("strong");
  name.textContent = file.name;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${formatBytes(file.stored_size ?? file.size)} · ${file.status}`;
  text.append(name, meta);

  const actions = document.createElement("div");
  actions.className = "actions";
  if (file.status === "uploaded") {
    const download = document.createElement("button");
    download.type = "button";
    download.className = "secondary";
    download.textContent = "Download";
    download.setAttribute("aria-label", `Download ${file.name}`);
    download.addEventListener("click", async () => {
      clearError();
      try {
        window.location.assign(await client.downloadUrl(file.id));
      } catch (error) {
        showError(error);
      }
    });
    actions.append(download);
  }
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "danger";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${file.name}`);
  remove.addEventListener("click", async () => {
    clearError();
    // Focus goes where the visitor is: the next file's delete button, else the previous one's,
    // else (no files left) the upload input.
    const next = (item.nextElementSibling ?? item.previousElementSibling)?.dataset.fileId;
    try {
      await client.deleteFile(file.id);
      await showFiles();
      const row = next && $("file-list").querySelector(`li[data-file-id="${next}"]`);
      (row?.querySelector("button.danger") ?? $("file-input")).focus();
    } catch (error) {
      showError(error);
    }
  });
  actions.append(remove);
  item.append(text, actions);
  return item;
}

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  const file = $("file-input").files[0];
  if (!file) return;
  const progress = $("upload-progress");
  progress.value = 0;
  progress.hidden = false;
  $("upload-button").disabled = true;
  $("upload-cancel").hidden = false;
  uploadAbort = new AbortController();
  say("upload-status", `Uploading ${file.name}…`);
  let uploaded = null;
  try {
    uploaded = await client.uploadFile(file, {
      signal: uploadAbort.signal,
      onProgress: (loaded, total) => {
        progress.value = total ? Math.round((loaded / total) * 100) : 0;
      },
    });
    progress.value = 100;
    say("upload-status", `${file.name} uploaded.`, "ok");
    $("upload-form").reset();
  } catch (error) {
    if (error instanceof SessionServiceError && error.code === "aborted") {
      say("upload-status", "Upload cancelled: nothing was kept.");
    } else {
      say("upload-status", showError(error), "bad");
    }
  } finally {
    hideWaiting();
    progress.hidden = true; // shown only while an upload runs
    $("upload-button").disabled = false;
    $("upload-cancel").hidden = true;
    uploadAbort = null;
    await showFiles();
  }
  // The new file's row takes the focus (its name and status are read out from there).
  if (uploaded) $("file-list").querySelector(`li[data-file-id="${uploaded.id}"]`)?.focus();
});

$("upload-cancel").addEventListener("click", () => uploadAbort?.abort());

/* Details: a refused field gets its message beside it --------------------------------------- */

const DETAIL_FIELDS = { name: "name", email: "email", consent_user_data: "consent" };
const FIELD_MESSAGES = {
  name: "Enter your name: 1 to 100 characters, no control characters.",
  email: "Enter a valid email address",
  consent: "Tick this box: nothing is stored without your consent.",
};

/** The service's `msg` of an email it refused says why (its first words are the type's). */
function fieldMessage(input, msg) {
  if (input !== "email") return FIELD_MESSAGES[input];
  const why = String(msg ?? "").replace(/^value is not a valid email address:\s*/i, "").trim();
  return why ? `${FIELD_MESSAGES.email}: ${why}` : `${FIELD_MESSAGES.email}.`;
}

function markField(input, message) {
  const field = $(input);
  const note = $(`${input}-error`);
  note.textContent = message ?? "";
  note.hidden = !message;
  if (message) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", note.id);
  } else {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
}

function clearFieldErrors() {
  for (const input of Object.values(DETAIL_FIELDS)) markField(input, null);
}

/** Marks each field a `validation_error` names; false when it names none of the form's. */
function showFieldErrors(error) {
  if (!(error instanceof SessionServiceError) || error.code !== "validation_error") return false;
  const refused = new Map();
  for (const entry of Array.isArray(error.problem?.errors) ? error.problem.errors : []) {
    const input = DETAIL_FIELDS[Array.isArray(entry?.loc) ? entry.loc.at(-1) : ""];
    if (input && !refused.has(input)) refused.set(input, fieldMessage(input, entry.msg));
  }
  if (refused.size === 0) return false;
  for (const input of Object.values(DETAIL_FIELDS)) markField(input, refused.get(input));
  $(refused.keys().next().value).focus();
  return true;
}

$("details-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  say("details-status", "Saving…");
  try {
    await client.submitDetails({
      name: $("name").value,
      email: $("email").value,
      consent: $("consent").checked,
    });
    clearFieldErrors();
    await showSession();
    say("details-status", `Saved. ${DETAILS_STATE.pending_verification}`, "ok");
    detailsShown = { id: client.sessionId, status: "pending_verification" };
  } catch (error) {
    if (showFieldErrors(error)) say("details-status", "Please correct the marked fields.", "bad");
    else say("details-status", showError(error), "bad");
  }
});

$("export-button").addEventListener("click", async () => {
  clearError();
  try {
    const data = await client.exportData();
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "session-export.json";
    link.click();
    URL.revokeObjectURL(link.href);
    say("data-status", "Your data was exported.", "ok");
  } catch (error) {
    say("data-status", showError(error), "bad");
  }
});

// The confirmation is a modal dialog: Escape or Cancel close it, and focus returns to the
// button that opened it whatever closed it.
$("erase-button").addEventListener("click", () => {
  $("erase-dialog").returnValue = "";
  $("erase-dialog").showModal();
});

$("erase-dialog").addEventListener("close", () => {
  $("erase-button").focus();
  if ($("erase-dialog").returnValue === "erase") erase();
});

async function erase() {
  clearError();
  try {
    await client.erase();
    forgetConversation();
    openChat();
    $("file-list").replaceChildren();
    $("files-empty").hidden = false;
    showAttachable([]);
    $("session-status").textContent = "erased";
    $("session-id").textContent = "—";
    $("session-expires").textContent = "—";
    $("details-form").reset();
    clearFieldErrors();
    say("details-status", "");
    detailsShown = null;
    say("data-status", "Everything was erased. A new session starts with your next action.", "ok");
  } catch (error) {
    say("data-status", showError(error), "bad");
  }
}

client.addEventListener("waiting", (event) => showWaiting(event.detail));

client.addEventListener("reset", (event) => {
  const notice = $("notice");
  notice.textContent = event.detail.notice;
  notice.hidden = false;
});

client.addEventListener("session", async (event) => {
  if (event.detail.sessionId) {
    await showSession();
    await showFiles();
  }
  openChat();
});

async function main() {
  try {
    await client.start();
    await showSession();
    await showFiles(); // first: the chat names attached files
    openChat();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(error);
    $("session-status").textContent = "unavailable";
  }
}

main();
