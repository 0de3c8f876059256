// The demo page: every action goes through session-client.js, nothing else talks to the API.
// It shows the session's public id (the support reference), never its token: the token stays
// inside the module (and localStorage).
import { SessionClient, SessionServiceError, messageFor } from "./session-client.js";

const client = new SessionClient();
const $ = (id) => document.getElementById(id);
let uploadAbort = null;

function say(id, text, kind = "") {
  const element = $(id);
  element.textContent = text;
  element.className = `status ${kind}`.trim();
}

function showError(error) {
  const box = $("error");
  const message = error instanceof SessionServiceError ? error.userMessage : messageFor("internal_error");
  box.textContent = message;
  box.hidden = false;
  const reference = error instanceof SessionServiceError ? error.requestId || client.lastRequestId : null;
  if (reference) $("support-id").textContent = reference;
  return message;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
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
    $("session-id").textContent = session.id; // the public id, never the token
    $("session-expires").textContent = session.expires_at
      ? new Date(session.expires_at).toLocaleString()
      : "never";
  } catch (error) {
    showError(error);
  }
}

async function showFiles() {
  const list = $("file-list");
  try {
    const files = await client.listFiles();
    list.replaceChildren(...files.map(fileItem));
    $("files-empty").hidden = files.length > 0;
  } catch (error) {
    showError(error);
  }
}

function fileItem(file) {
  const item = document.createElement("li");
  item.dataset.fileId = file.id;
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
    try {
      await client.deleteFile(file.id);
      await showFiles();
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
  try {
    await client.uploadFile(file, {
      signal: uploadAbort.signal,
      onProgress: (loaded, total) => {
        progress.value = total ? Math.round((loaded / total) * 100) : 0;
      },
    });
    progress.value = 100;
    say("upload-status", `${file.name} uploaded.`, "ok");
    $("upload-form").reset();
  } catch (error) {
    say("upload-status", showError(error), "bad");
  } finally {
    $("upload-button").disabled = false;
    $("upload-cancel").hidden = true;
    uploadAbort = null;
    await showFiles();
  }
});

$("upload-cancel").addEventListener("click", () => uploadAbort?.abort());

$("details-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  try {
    await client.submitDetails({
      name: $("name").value,
      email: $("email").value,
      consent: $("consent").checked,
    });
    say("details-status", "Saved. Check your inbox to verify your email.", "ok");
    await showSession();
  } catch (error) {
    say("details-status", showError(error), "bad");
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

$("erase-button").addEventListener("click", () => {
  $("erase-confirm").hidden = false;
  $("erase-confirm").focus();
});

$("erase-confirm").addEventListener("click", async () => {
  clearError();
  $("erase-confirm").hidden = true;
  try {
    await client.erase();
    $("file-list").replaceChildren();
    $("files-empty").hidden = false;
    $("session-status").textContent = "erased";
    $("session-id").textContent = "—";
    $("session-expires").textContent = "—";
    $("details-form").reset();
    say("data-status", "Everything was erased. A new session starts with your next action.", "ok");
  } catch (error) {
    say("data-status", showError(error), "bad");
  }
});

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
});

async function main() {
  try {
    await client.start();
    await showSession();
    await showFiles();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(error);
    $("session-status").textContent = "unavailable";
  }
}

main();
