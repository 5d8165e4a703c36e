// DCP pages: copy buttons, self-refreshing fragments, and following a job live. No inline script anywhere.
"use strict";

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copyTarget);
      await navigator.clipboard.writeText(source.textContent.trim());
      const label = button.textContent;
      button.textContent = button.dataset.copiedText || label;
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
}

// <tbody data-refresh-url="/fragment" data-refresh-seconds="10">: replaced by the server's fresh rendering.
function setUpRefreshing() {
  for (const element of document.querySelectorAll("[data-refresh-url]")) {
    const seconds = Number(element.dataset.refreshSeconds || "10");
    setInterval(async () => {
      if (document.hidden) return;
      const response = await fetch(element.dataset.refreshUrl, { credentials: "same-origin" });
      if (response.ok) element.innerHTML = await response.text();
    }, seconds * 1000);
  }
}

// <section data-events-url="/renter/jobs/ID/events" data-status-labels='{"running": "…"}'>: the job's
// progress and streamed tokens as they come; the page reloads when the job ends, to show the result.
function followJob() {
  const section = document.querySelector("[data-events-url]");
  if (!section) return;
  const output = section.querySelector("[data-live-output]");
  const progress = section.querySelector("[data-live-progress]");
  const status = section.querySelector("[data-live-status]");
  const labels = JSON.parse(section.dataset.statusLabels || "{}");
  const events = new EventSource(section.dataset.eventsUrl);
  events.addEventListener("tokens", (event) => {
    if (output) output.textContent += JSON.parse(event.data).text || "";
  });
  events.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    if (progress && typeof data.progress === "number") progress.value = data.progress;
  });
  events.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    if (status && labels[data.status]) status.textContent = labels[data.status];
  });
  events.addEventListener("done", () => {
    events.close();
    window.location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpRefreshing();
  followJob();
});
