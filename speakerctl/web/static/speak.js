// "Speak now": the microphone (getUserMedia) recorded by MediaRecorder as Opus in WebM or Ogg, sent in
// 200 ms chunks over a WebSocket to the controller, which decodes it with ffmpeg into the live stream.
// Nothing is sent before the browser grants the microphone and the controller accepts the request.
"use strict";
(function () {
  const form = document.getElementById("speak-form");
  if (!form) return;
  const status = document.getElementById("speak-status");
  const startButton = document.getElementById("speak-start");
  const stopButton = document.getElementById("speak-stop");
  const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus"];
  let socket = null, recorder = null, microphone = null;

  function say(state, text) {
    status.textContent = text;
    status.dataset.state = state;
  }

  function release() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    if (microphone) microphone.getTracks().forEach((t) => t.stop());
    recorder = microphone = null;
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  function record() {
    const type = TYPES.find((t) => MediaRecorder.isTypeSupported(t));
    recorder = new MediaRecorder(microphone, type ? { mimeType: type } : {});
    recorder.addEventListener("dataavailable", (e) => {
      if (e.data.size && socket && socket.readyState === WebSocket.OPEN) socket.send(e.data);
    });
    recorder.addEventListener("stop", () => {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ stop: true }));
    });
    recorder.start(200);
    stopButton.disabled = false;
    say("connecting", form.dataset.msgConnecting);
  }

  function ask(question) {
    say("confirm", question + " ");
    const yes = document.createElement("button");
    yes.type = "button";
    yes.id = "speak-confirm";
    yes.className = "danger";
    yes.textContent = form.dataset.msgConfirm;
    yes.addEventListener("click", () => start(true));
    status.appendChild(yes);
  }

  function heard(e) {
    const m = JSON.parse(e.data);
    if (m.state === "ready") record();
    else if (m.state === "live") say("live", `${form.dataset.msgLive} ${m.elapsed} · ${m.listening} ${form.dataset.msgListening}`);
    else if (m.state === "ended") { say("ended", `${form.dataset.msgEnded} (${m.reason})`); release(); }
    else if (m.confirm) { ask(m.confirm); release(); }
    else if (m.error) { say("refused", m.error); release(); }
  }

  async function start(confirmed) {
    if (!navigator.mediaDevices || !window.MediaRecorder) return say("unsupported", form.dataset.msgUnsupported);
    startButton.disabled = true;
    try {
      microphone = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (err) {
      startButton.disabled = false;
      return say("denied", form.dataset.msgDenied);
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}${form.getAttribute("action")}`);
    socket.addEventListener("open", () => socket.send(JSON.stringify({
      csrf: form.elements.csrf.value, to: form.elements.to.value,
      priority: form.elements.priority.value, confirmed: Boolean(confirmed),
    })));
    socket.addEventListener("message", heard);
    socket.addEventListener("close", () => {
      if (status.dataset.state === "live" || status.dataset.state === "connecting") say("lost", form.dataset.msgLost);
      socket = null;
      release();
    });
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); start(false); });
  stopButton.addEventListener("click", () => { stopButton.disabled = true; if (recorder) recorder.stop(); });
  // Closing the page closes the socket: the controller ends the stream on every cluster.
  window.addEventListener("pagehide", () => { if (socket) socket.close(); release(); });
})();
