// firehook UI: confirmations for destructive buttons, and live logs of running runs.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var button = event.submitter || event.target.querySelector("[data-confirm]");
    var message = button && button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  var STATE_ICONS = {pending: "◷", in_progress: "▶", complete: "■", cancelled: "⊘", scheduled: "◷", staged: "◷", skipped: "↷"};

  function badge(className, text) {
    var span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }

  function showStatus(state, result) {
    var box = document.getElementById("run-status");
    if (!box) { return; }
    var stateSlot = box.querySelector("[data-role=state]");
    var resultSlot = box.querySelector("[data-role=result]");
    if (stateSlot && state) {
      stateSlot.replaceChildren(badge("state-" + state, (STATE_ICONS[state] || "•") + " " + state.replace("_", " ")));
    }
    if (resultSlot) {
      if (result === "success") { resultSlot.replaceChildren(badge("result-success", "✓ success")); }
      else if (result === "failure") { resultSlot.replaceChildren(badge("result-failure", "✗ failure")); }
    }
    box.setAttribute("data-state", state || "");
  }

  function appendLines(log, lines) {
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    lines.forEach(function (item) {
      var line = document.createElement("span");
      line.className = "log-line";
      var stamp = document.createElement("span");
      stamp.className = "log-ts";
      stamp.textContent = String(item.data.timestamp || "").replace("T", " ").slice(0, 19);
      line.appendChild(stamp);
      line.appendChild(document.createTextNode(" " + item.data.message));
      log.appendChild(line);
      log.appendChild(document.createTextNode("\n"));
    });
    if (atBottom) { log.scrollTop = log.scrollHeight; }
  }

  function follow(log) {
    var after = parseInt(log.getAttribute("data-after") || "0", 10);
    var delay = 1000;
    function poll() {
      fetch(log.getAttribute("data-src") + "?after=" + after, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          if (data.lines && data.lines.length) { appendLines(log, data.lines); }
          after = data.after;
          log.setAttribute("data-after", String(after));
          showStatus(data.state, data.result);
          if (data.sealed) {
            log.setAttribute("data-sealed", "true");
            // The run is over: reload once for its attempts and timings.
            window.location.reload();
            return;
          }
          delay = 1000;
          window.setTimeout(poll, delay);
        })
        .catch(function () {
          delay = Math.min(delay * 2, 15000);
          window.setTimeout(poll, delay);
        });
    }
    window.setTimeout(poll, delay);
  }

  // A page that answers a POST (a form with errors, a result) names the page the form was on:
  // the history entry becomes that GET, so a reload does not send the form again.
  var replaceUrl = document.body && document.body.getAttribute("data-replace-url");
  if (replaceUrl && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", replaceUrl);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (log && log.getAttribute("data-sealed") === "false") {
      var status = document.getElementById("log-status");
      if (status) { status.setAttribute("aria-live", "polite"); }
      follow(log);
    }
  });
})();
