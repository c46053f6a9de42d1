/*
 * facegate-capture.js: the browser side of a facegate liveness session (docs/capture.md).
 *
 *   const capture = new FacegateCapture(element, {token, key, onResult(r) {}, onError(e) {}});
 *   capture.start();
 *
 * States (the container's data-state): intro -> preview -> challenge -> uploading -> result,
 * or error from any of them. The camera image is shown mirrored; the frames and the recording
 * sent are the camera's own (unmirrored). Everything sent is sealed under the session's key
 * (AES-256-GCM, "fg1." + base64(nonce || ciphertext || tag)).
 *
 * A classic script, no build step: it defines window.FacegateCapture. With an element carrying
 * data-facegate-autostart on the page, it reads its session from the URL fragment and starts.
 */
(function (global) {
  "use strict";

  const GUIDE_INTERVAL_MS = 400;   // one guidance frame at most this often, one in flight
  const GUIDE_WIDTH_PX = 480;      // guidance frames: 480 px wide JPEG, quality 0.8
  const STEADY_MS = 1000;          // the hint must stay "ok" this long before recording
  const STEP_MS = 3500;            // a step shows at most this long (the server allows 4 s)
  const TAIL_MS = 500;             // recording goes on this long after the last step
  const MIN_RECORD_MS = 2500;      // the server wants at least 2.5 s
  const DEFAULT_RECORD_S = 8;

  const INSTRUCTIONS = {
    turn_left: "Turn your head to your left",
    turn_right: "Turn your head to your right",
    look_up: "Look up",
    look_down: "Look down",
  };
  // Arrows for the mirrored preview: the person's own left is the screen's left.
  const ARROWS = {turn_left: "\u2190", turn_right: "\u2192", look_up: "\u2191", look_down: "\u2193"};

  const HINTS = {
    ok: "Hold still\u2026",
    no_face: "We can't see your face. Look straight at the camera.",
    several_faces: "Only one person should be in view.",
    too_far: "Move closer to the camera.",
    too_close: "Move a little further away from the camera.",
    not_centred: "Move your face into the middle of the oval.",
    too_dark: "It is too dark. Find more light, facing you.",
    too_bright: "It is too bright. Avoid strong light on your face or behind you.",
  };

  const FAILED_CHECKS = {
    challenge: "The head movements asked for were not recognised.",
    liveness: "The video did not look like a live person in front of the camera.",
    capture: "Your face was not visible for long enough.",
  };

  // Error codes the page explains; retry: whether "Try again" on this page can help.
  const ERRORS = {
    4101: {text: "This session has expired. Please start again from the app that sent you here.", retry: false},
    4102: {text: "This link is not valid (it may be incomplete or altered). Please start again from the app that sent you here.", retry: false},
    4103: {text: "This session has already been used. Please start a new check from the app that sent you here.", retry: false},
    2008: {text: "The recording could not be read. Please try again.", retry: true},
    4007: {text: "No face was seen in the recording. Keep your face in the oval and try again.", retry: true},
    503: {text: "The service is busy right now. Please try again in a moment.", retry: true},
    429: {text: "The service is busy right now. Please try again in a moment.", retry: true},
    camera_denied: {text: "Camera access was not allowed. Allow the camera for this site in your browser's settings, then try again.", retry: true},
    camera_missing: {text: "No camera was found on this device.", retry: true},
    camera_busy: {text: "The camera could not be started. Close other apps that use it, then try again.", retry: true},
    unsupported: {text: "This browser cannot do the check: it needs camera recording and encryption, over HTTPS.", retry: false},
    no_session: {text: "This page needs the link from the app that sent you here.", retry: false},
    network: {text: "The service could not be reached. Check your connection and try again.", retry: true},
  };

  class FacegateError extends Error {
    constructor(code, message) {
      const known = ERRORS[code];
      super(known ? known.text : "Something went wrong" +
        (typeof code === "number" ? " (code " + code + ")" : "") + ". Please try again.");
      this.code = code;
      this.detail = message || "";
      this.retryable = known ? known.retry : true;
    }
  }

  // ---- sealing ------------------------------------------------------------------------------

  function base64ToBytes(text) {
    // "+" turns into " " when a fragment is decoded as a form: undo it.
    const binary = atob(text.trim().replace(/ /g, "+").replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function bytesToBase64(bytes) {
    if (typeof bytes.toBase64 === "function") return bytes.toBase64();
    // In chunks: String.fromCharCode(...hugeArray) overflows the stack.
    const parts = [];
    for (let i = 0; i < bytes.length; i += 0x8000) {
      parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return btoa(parts.join(""));
  }

  async function importKey(base64Key) {
    const raw = base64ToBytes(base64Key);
    if (raw.length !== 32) throw new FacegateError(4102, "the session key is not 32 bytes");
    return crypto.subtle.importKey("raw", raw, {name: "AES-GCM"}, false, ["encrypt"]);
  }

  async function seal(key, data) {
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const sealed = new Uint8Array(await crypto.subtle.encrypt({name: "AES-GCM", iv: nonce}, key, data));
    const out = new Uint8Array(nonce.length + sealed.length);  // WebCrypto gives ciphertext || tag
    out.set(nonce);
    out.set(sealed, nonce.length);
    return "fg1." + bytesToBase64(out);
  }

  // ---- the session's challenge ----------------------------------------------------------------

  function challengeOf(value) {
    const list = Array.isArray(value) ? value : String(value || "").split(",");
    return list.map((item) => {
      const action = (typeof item === "string" ? item : item.action).trim();
      return {action, instruction: (item && item.instruction) || INSTRUCTIONS[action] || action};
    }).filter((step) => step.action);
  }

  // Fallback when the challenge is not given: the token's signed claims are readable JSON
  // ({"ch": [...]} before the "."), though the page treats the token as opaque otherwise.
  function challengeFromToken(token) {
    try {
      const payload = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      return challengeOf(JSON.parse(atob(payload + "===".slice((payload.length + 3) % 4))).ch || []);
    } catch (error) {
      return [];
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  // ---- the capture --------------------------------------------------------------------------

  class FacegateCapture {
    /**
     * @param {HTMLElement} container where the capture draws itself (its content is replaced)
     * @param {object} options token, key (from the session's open), and optionally baseUrl
     *   (facegate's origin, "" = this page's), challenge ([{action, instruction}] or
     *   "turn_left,turn_right"), recordS, onResult({passed, failedCheck, retryAdvice}),
     *   onError({code, message, retryable}), onState(state)
     */
    constructor(container, options) {
      this.container = container;
      this.options = options || {};
      this.baseUrl = (this.options.baseUrl || "").replace(/\/$/, "");
      this.token = this.options.token || "";
      this.challenge = challengeOf(this.options.challenge);
      if (!this.challenge.length) this.challenge = challengeFromToken(this.token);
      this.recordS = Number(this.options.recordS) || DEFAULT_RECORD_S;
      this.state = "";
      this.stream = null;
      this.run = 0;  // bumped on every (re)start and stop: old loops and timers see it and quit
    }

    /** Draw the intro with its "Allow camera" button. */
    start() {
      this._build();
      if (!this.token || !this.options.key) return this._fail(new FacegateError("no_session"));
      if (!(global.crypto && crypto.subtle && navigator.mediaDevices && global.MediaRecorder)) {
        return this._fail(new FacegateError("unsupported"));
      }
      // A key that does not import is a broken link: say so before the camera is asked for.
      this.keyPromise = importKey(this.options.key).catch((error) => {
        throw error instanceof FacegateError ? error : new FacegateError(4102, String(error));
      });
      this.keyPromise.catch((error) => this._fail(error));
      this._show("intro", {
        title: "Liveness check",
        lead: "We will film your face for a few seconds and ask you to move your head. " +
          "The video is encrypted on this device before it is sent.",
        button: ["Allow camera", () => this._openCamera()],
      });
    }

    /** Stop the camera and every timer; the element keeps its last state. */
    stop() {
      this.run++;
      clearTimeout(this.stopTimer);
      clearTimeout(this.stepTimer);
      if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
      if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
      this.stream = null;
      if (this.video) this.video.srcObject = null;
    }

    _build() {
      const root = el("section", "fg");
      this.titleEl = el("h1", "fg-title");
      this.titleEl.tabIndex = -1;
      this.leadEl = el("p", "fg-lead");
      this.stage = el("div", "fg-stage");
      this.video = el("video", "fg-video");
      this.video.muted = true;
      this.video.playsInline = true;
      this.video.setAttribute("aria-hidden", "true");
      this.oval = el("div", "fg-oval");
      this.oval.setAttribute("aria-hidden", "true");
      this.recEl = el("p", "fg-rec", "Recording");
      this.stage.append(this.video, this.oval, this.recEl);
      // Every instruction and hint is read out from here (polite: after what is being read).
      this.live = el("div", "fg-live");
      this.live.setAttribute("role", "status");
      this.live.setAttribute("aria-live", "polite");
      this.stepEl = el("p", "fg-step");
      this.arrowEl = el("span", "fg-arrow");
      this.arrowEl.setAttribute("aria-hidden", "true");
      this.messageEl = el("p", "fg-message");
      this.live.append(this.stepEl, this.messageEl);
      this.progress = el("progress", "fg-progress");
      this.detailEl = el("p", "fg-detail");
      this.actions = el("div", "fg-actions");
      root.append(this.titleEl, this.leadEl, this.stage, this.live, this.progress, this.detailEl,
        this.actions);
      this.container.replaceChildren(root);
      this.root = root;
    }

    // One state's text and button; the container's data-state follows (tests and styles use it).
    _show(state, {title, lead = "", message = "", step = "", detail = "", button = null, focus = false}) {
      this.state = state;
      this.root.dataset.state = state;
      this.container.dataset.state = state;
      this.titleEl.textContent = title;
      this.leadEl.textContent = lead;
      this.stepEl.textContent = step;
      this._message(message);
      this.detailEl.textContent = detail;
      this.stage.hidden = !(state === "preview" || state === "challenge");
      this.recEl.hidden = state !== "challenge";
      this.progress.hidden = state !== "challenge";
      this.actions.replaceChildren();
      if (button) {
        const node = el("button", "fg-button", button[0]);
        node.type = "button";
        node.addEventListener("click", button[1], {once: true});
        this.actions.append(node);
        if (focus || state === "intro") node.focus();
      }
      if (focus && !button) this.titleEl.focus();
      if (this.options.onState) this.options.onState(state);
      this._emit("state", {state});
    }

    _message(text, arrow) {
      if (this.messageEl.textContent === text + (arrow ? " " + arrow : "")) return;  // not re-read
      this.messageEl.replaceChildren(text);
      if (arrow) {
        this.arrowEl.textContent = " " + arrow;
        this.messageEl.append(this.arrowEl);
      }
    }

    _emit(name, detail) {
      this.container.dispatchEvent(new CustomEvent("facegate:" + name, {detail}));
    }

    _fail(error) {
      if (!(error instanceof FacegateError)) {
        error = new FacegateError("error", String(error));
      }
      this.stop();
      this.root.dataset.code = error.code;
      this._show("error", {
        title: "The check could not be completed",
        message: error.message,
        detail: ERRORS[error.code] ? "" : error.detail,
        button: error.retryable ? ["Try again", () => this._openCamera()] : null,
        focus: true,
      });
      if (this.options.onError) {
        this.options.onError({code: error.code, message: error.message, retryable: error.retryable});
      }
    }

    async _post(path, body) {
      let response;
      try {
        response = await fetch(this.baseUrl + path, {
          method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify(body), credentials: "omit", cache: "no-store",
        });
      } catch (error) {
        throw new FacegateError("network", String(error));
      }
      let answer = null;
      try { answer = await response.json(); } catch (error) { /* not JSON: the status speaks */ }
      if (!answer || answer.code !== 1000) {
        throw new FacegateError(answer && answer.code ? answer.code : response.status,
          answer && answer.message);
      }
      return answer;
    }

    // ---- camera and guidance -------------------------------------------------------------------

    async _openCamera() {
      this.stop();
      const run = ++this.run;
      delete this.root.dataset.code;
      this._show("preview", {title: "Position your face", message: "Starting the camera\u2026",
        lead: "Keep your face inside the oval."});
      this.oval.dataset.ok = "false";
      try {
        this.key = await this.keyPromise;
        this.stream = await navigator.mediaDevices.getUserMedia({audio: false, video: {
          facingMode: "user", width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 15}}});
      } catch (error) {
        if (error instanceof FacegateError) return this._fail(error);
        const code = {NotAllowedError: "camera_denied", SecurityError: "camera_denied",
          NotFoundError: "camera_missing", OverconstrainedError: "camera_missing"}[error.name];
        return this._fail(new FacegateError(code || "camera_busy", String(error)));
      }
      if (run !== this.run) return;
      this.video.srcObject = this.stream;
      await this.video.play().catch(() => {});
      this._guideLoop(run);
    }

    async _frame() {
      const video = this.video;
      const width = Math.min(GUIDE_WIDTH_PX, video.videoWidth);
      const height = Math.round(video.videoHeight * width / video.videoWidth);
      this.canvas = this.canvas || document.createElement("canvas");
      this.canvas.width = width;
      this.canvas.height = height;
      this.canvas.getContext("2d").drawImage(video, 0, 0, width, height);  // unmirrored
      const blob = await new Promise((resolve) => this.canvas.toBlob(resolve, "image/jpeg", 0.8));
      return new Uint8Array(await blob.arrayBuffer());
    }

    // Guidance, one frame at a time, while previewing and recording.
    async _guideLoop(run) {
      let steadySince = null, failures = 0;
      while (run === this.run && (this.state === "preview" || this.state === "challenge")) {
        const started = performance.now();
        if (this.video.videoWidth) {
          try {
            const image = await seal(this.key, await this._frame());
            const answer = await this._post("/liveness/session/guide",
              {session_token: this.token, encrypted_image: image});
            if (run !== this.run) return;
            failures = 0;
            this._emit("guide", {hint: answer.hint, action: answer.action, pose: answer.pose});
            if (this.state === "preview") {
              const ok = answer.hint === "ok";
              steadySince = ok ? (steadySince || started) : null;
              this.oval.dataset.ok = String(ok);
              this._message(HINTS[answer.hint] || HINTS.no_face);
              if (ok && performance.now() - steadySince >= STEADY_MS) this._startChallenge(run);
            } else if (answer.action && answer.action === this._currentAction()) {
              this._nextStep(run);
            }
          } catch (error) {
            if (run !== this.run) return;
            // The session is gone: nothing more to do here. Other answers: skip this frame,
            // and say why once they keep coming.
            if ([4101, 4102, 4103].includes(error.code)) return this._fail(error);
            steadySince = null;
            if (++failures >= 3 && this.state === "preview") this._message(error.message);
          }
        }
        await sleep(Math.max(50, GUIDE_INTERVAL_MS - (performance.now() - started)));
      }
    }

    // ---- the challenge and the recording ------------------------------------------------------

    _currentAction() {
      const step = this.challenge[this.stepIndex];
      return step && step.action;
    }

    _startChallenge(run) {
      if (!this.challenge.length) return this._fail(new FacegateError(4102, "no challenge in the session"));
      const type = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4"]
        .find((t) => MediaRecorder.isTypeSupported(t)) || "";
      this.chunks = [];
      this.recorder = new MediaRecorder(this.stream, {mimeType: type, videoBitsPerSecond: 1500000});
      this.recorder.ondataavailable = (event) => event.data.size && this.chunks.push(event.data);
      this.recorder.start(1000);
      this.recordStart = performance.now();
      this.stepIndex = -1;
      this.stopTimer = setTimeout(() => this._finish(run), this.recordS * 1000);
      this._show("challenge", {title: "Follow the instructions",
        lead: "Move your head as asked, then come back to face the camera."});
      this.progress.max = this.challenge.length;
      this._nextStep(run);
    }

    // The next step, on the move being seen or its time running out; after the last, stop.
    _nextStep(run) {
      clearTimeout(this.stepTimer);
      if (run !== this.run || this.state !== "challenge") return;
      this.stepIndex++;
      const count = this.challenge.length;
      this.progress.value = Math.min(this.stepIndex, count);
      this.progress.textContent = this.stepIndex + " of " + count + " done";
      if (this.stepIndex >= count) {
        this.stepEl.textContent = "All steps done";
        this._message("Now look at the camera again.");
        const left = Math.max(TAIL_MS, MIN_RECORD_MS - (performance.now() - this.recordStart));
        clearTimeout(this.stopTimer);
        this.stopTimer = setTimeout(() => this._finish(run), left);
        return;
      }
      const step = this.challenge[this.stepIndex];
      this.stepEl.textContent = "Step " + (this.stepIndex + 1) + " of " + count;
      this._message(step.instruction, ARROWS[step.action]);
      this._emit("step", {index: this.stepIndex, action: step.action});
      this.stepTimer = setTimeout(() => this._nextStep(run), STEP_MS);
    }

    async _finish(run) {
      if (run !== this.run || this.state !== "challenge") return;
      clearTimeout(this.stepTimer);
      clearTimeout(this.stopTimer);
      const recorder = this.recorder;
      const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
      this._show("uploading", {title: "Checking\u2026", message: "Sending your video securely\u2026"});
      recorder.stop();
      await stopped;
      this.stop();  // camera off before the upload
      const run2 = this.run;
      try {
        const blob = new Blob(this.chunks, {type: recorder.mimeType});
        const video = await seal(this.key, new Uint8Array(await blob.arrayBuffer()));
        this._message("Checking your video\u2026");
        const answer = await this._post("/liveness/session/capture",
          {session_token: this.token, encrypted_video: video});
        if (run2 === this.run) this._result(answer);
      } catch (error) {
        if (run2 === this.run) this._fail(error);
      }
    }

    _result(answer) {
      const passed = answer.passed === true;
      this.root.dataset.passed = String(passed);
      if (answer.failed_check) this.root.dataset.failedCheck = answer.failed_check;
      this._show("result", passed ? {
        title: "Liveness check passed",
        message: "\u2713 Passed. You can go back to the app that sent you here.",
      } : {
        title: "Liveness check not passed",
        message: "\u2717 Not passed. " + (FAILED_CHECKS[answer.failed_check] || ""),
        step: answer.failed_check ? "Failed check: " + answer.failed_check : "",
        detail: (answer.retry_advice ? answer.retry_advice + " " : "") +
          "To try again, start a new check from the app that sent you here.",
      });
      this.titleEl.focus();
      if (this.options.onResult) {
        this.options.onResult({passed, failedCheck: answer.failed_check || null,
          retryAdvice: answer.retry_advice || ""});
      }
    }
  }

  /** The session from this page's URL fragment (#token=...&key=...), which is then removed
   * from the address bar and history so that it is not shared or bookmarked. */
  FacegateCapture.sessionFromLocation = function () {
    const fields = new URLSearchParams(global.location.hash.replace(/^#/, ""));
    if (global.location.hash) {
      global.history.replaceState(null, "", global.location.pathname + global.location.search);
    }
    return {
      token: fields.get("token") || "", key: fields.get("key") || "",
      challenge: fields.get("actions") || fields.get("challenge") || undefined,
      recordS: fields.get("record_s") || undefined,
    };
  };

  FacegateCapture.FacegateError = FacegateError;
  FacegateCapture.seal = seal;
  FacegateCapture.importKey = importKey;
  global.FacegateCapture = FacegateCapture;

  // The hosted page (index.html): start on the element marked data-facegate-autostart.
  function autostart() {
    const element = document.querySelector("[data-facegate-autostart]");
    if (!element) return;
    global.facegateCapture = new FacegateCapture(element, FacegateCapture.sessionFromLocation());
    global.facegateCapture.start();
  }
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autostart);
    else autostart();
  }
})(window);
