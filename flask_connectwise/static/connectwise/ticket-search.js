/*!
 * flask-connectwise ticket search: a WAI-ARIA 1.2 combobox (list autocomplete) over
 * GET {prefix}/tickets/search?q=. No dependencies, no build step.
 *
 * Markup (rendered by TicketSearchField): a [data-cw-ticket-search] wrapper holding the text
 * input (role=combobox, name=<field>), a listbox, a polite live region and a line that shows the
 * selected ticket's company and status. Without this script the input accepts a ticket number.
 * With it, the field's name moves to a hidden input that carries the chosen ticket id.
 *
 * Data attributes on the wrapper: data-search-url, data-debounce (ms, 250), data-min-digits (1),
 * data-min-text (2), data-cache-ms (30000), data-max-length (200, the input's maxlength unless
 * the markup sets one), data-selected-id.
 */
(function () {
  "use strict";

  if (window.ConnectWiseTicketSearch) {
    window.ConnectWiseTicketSearch.init();
    return;
  }

  // Answers reused by every field of the page: url -> {at: ms, tickets: [...]}.
  var answers = new Map();
  var MAX_ANSWERS = 50;
  var uid = 0;

  function number(value, fallback) {
    var n = parseInt(value, 10);
    return isNaN(n) || n < 0 ? fallback : n;
  }

  function labelOf(ticket) {
    return "#" + ticket.id + (ticket.summary ? " — " + ticket.summary : "");
  }

  function metaOf(ticket) {
    var parts = [];
    if (ticket.company) parts.push(ticket.company);
    if (ticket.status) parts.push(ticket.status);
    if (ticket.closed) parts.push("closed");
    return parts.join(" · ");
  }

  function remember(url, tickets) {
    answers.delete(url);
    answers.set(url, { at: Date.now(), tickets: tickets });
    while (answers.size > MAX_ANSWERS) {
      answers.delete(answers.keys().next().value);
    }
  }

  function setup(root) {
    if (root.hasAttribute("data-cw-ready")) return;
    root.setAttribute("data-cw-ready", "");

    var input = root.querySelector("input.cw-ts-input");
    var listbox = root.querySelector("[role=listbox]");
    var status = root.querySelector("[role=status]");
    var meta = root.querySelector(".cw-ts-selected");
    if (!input || !listbox || !status) return;
    // The server refuses longer search text (data-max-length; 200 when the markup omits it).
    if (!input.hasAttribute("maxlength")) {
      input.maxLength = number(root.getAttribute("data-max-length"), 200) || 200;
    }

    var searchUrl = root.getAttribute("data-search-url");
    var debounceMs = number(root.getAttribute("data-debounce"), 250);
    var minDigits = number(root.getAttribute("data-min-digits"), 1) || 1;
    var minText = number(root.getAttribute("data-min-text"), 2) || 1;
    // The server answers at most this many tickets: a full page says there may be more.
    var limit = number(root.getAttribute("data-limit"), 0);
    var cacheMs = number(root.getAttribute("data-cache-ms"), 30000);
    // The server answers within CONNECTWISE_CHECK_DEADLINE; give up a little after it.
    var deadlineMs = number(root.getAttribute("data-deadline-ms"), 2000);
    var SLOW = "ConnectWise is slow; type a ticket number";
    var AUTH_FAILED =
      "ConnectWise rejected this tenant's credentials. Ask an administrator to check them.";
    var optionPrefix = (listbox.id || "cw-ts-" + ++uid) + "-opt-";

    // The submitted value: the chosen ticket id (or the typed text for the server to check).
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = input.name;
    input.removeAttribute("name");
    root.appendChild(hidden);

    var selected = null; // {id, label}
    var initialId = root.getAttribute("data-selected-id");
    if (initialId) {
      selected = { id: initialId, label: input.value };
      hidden.value = initialId;
    } else {
      hidden.value = input.value;
    }

    var tickets = [];
    var active = -1;
    var timer = 0;
    var controller = null;

    function announce(text, kind) {
      status.textContent = text;
      root.classList.toggle("cw-ts-is-error", kind === "error");
      root.classList.toggle("cw-ts-is-loading", kind === "loading");
      root.classList.toggle("cw-ts-is-empty", kind === "empty");
    }

    function isOpen() {
      return !listbox.hidden;
    }

    function open() {
      if (!tickets.length) return;
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      setActive(-1);
    }

    function setActive(index) {
      var options = listbox.children;
      if (active >= 0 && options[active]) {
        options[active].setAttribute("aria-selected", "false");
        options[active].classList.remove("cw-ts-active");
      }
      active = index;
      if (index < 0 || !options[index]) {
        active = -1;
        input.removeAttribute("aria-activedescendant");
        return;
      }
      var option = options[index];
      option.setAttribute("aria-selected", "true");
      option.classList.add("cw-ts-active");
      input.setAttribute("aria-activedescendant", option.id);
      if (option.scrollIntoView) option.scrollIntoView({ block: "nearest" });
    }

    function render(list) {
      tickets = list;
      listbox.textContent = "";
      active = -1;
      input.removeAttribute("aria-activedescendant");
      list.forEach(function (ticket, index) {
        var option = document.createElement("li");
        option.id = optionPrefix + ticket.id;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.className = "cw-ts-option";
        option.setAttribute("data-index", String(index));
        var title = document.createElement("span");
        title.className = "cw-ts-title";
        title.textContent = labelOf(ticket);
        option.appendChild(title);
        var details = metaOf(ticket);
        if (details) {
          var line = document.createElement("span");
          line.className = "cw-ts-meta";
          line.textContent = details;
          option.appendChild(line);
        }
        listbox.appendChild(option);
      });
      if (list.length) {
        open();
        var found =
          limit && list.length >= limit
            ? "Showing the first " + list.length + " tickets; there may be more. " +
              "Type more of the summary, or the ticket number, to narrow the search."
            : list.length === 1
              ? "1 ticket found."
              : list.length + " tickets found.";
        announce(found + " Use the arrow keys to choose.", "results");
      } else {
        close();
        announce("No tickets found", "empty");
      }
    }

    function choose(index) {
      var ticket = tickets[index];
      if (!ticket) return;
      selected = { id: String(ticket.id), label: labelOf(ticket) };
      input.value = selected.label;
      hidden.value = selected.id;
      if (meta) meta.textContent = metaOf(ticket);
      close();
      announce("Ticket #" + ticket.id + " selected", "selected");
      hidden.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function queryOf(text) {
      var trimmed = text.replace(/\s+/g, " ").trim();
      var digits = /^#?\s*(\d+)$/.exec(trimmed);
      if (digits) return digits[1].length >= minDigits ? digits[1] : null;
      return trimmed.length >= minText ? trimmed : null;
    }

    function abort() {
      if (controller) {
        controller.abort();
        controller = null;
      }
    }

    function search(q) {
      var url = searchUrl + (searchUrl.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(q);
      var known = answers.get(url);
      abort();
      if (known && Date.now() - known.at < cacheMs) {
        render(known.tickets);
        return;
      }
      var mine = (controller = new AbortController());
      announce("Searching…", "loading");
      listbox.setAttribute("aria-busy", "true");
      var slowTimer = setTimeout(function () {
        if (mine !== controller) return;
        mine.cwSlow = true;
        mine.abort();
      }, deadlineMs + 1000);
      fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: mine.signal,
      })
        .then(function (response) {
          return response
            .json()
            .catch(function () {
              return null;
            })
            .then(function (body) {
              if (!response.ok) {
                var message = body && body.message ? body.message : "the server could not answer";
                var failure = new Error(message);
                var code = body ? body.error : "";
                // 503 connectwise_slow / connectwise_unavailable: the server's plain words.
                failure.cwPlain = code === "connectwise_slow" || code === "connectwise_unavailable";
                // Rejected credentials or refused search text: typing a number does not help.
                if (code === "connectwise_auth_failed") failure.cwFinal = AUTH_FAILED;
                else if (code === "validation_error" && body.message) {
                  failure.cwFinal = body.message;
                }
                throw failure;
              }
              if (!Array.isArray(body)) throw new Error("unexpected answer");
              return body;
            });
        })
        .then(function (list) {
          clearTimeout(slowTimer);
          if (mine !== controller) return;
          controller = null;
          listbox.removeAttribute("aria-busy");
          remember(url, list);
          render(list);
        })
        .catch(function (error) {
          clearTimeout(slowTimer);
          if (mine !== controller) return;
          if (error && error.name === "AbortError" && !mine.cwSlow) return;
          controller = null;
          listbox.removeAttribute("aria-busy");
          tickets = [];
          listbox.textContent = "";
          close();
          if (mine.cwSlow) announce(SLOW, "error");
          else if (error.cwFinal) announce(error.cwFinal, "error");
          else if (error.cwPlain) announce(error.message, "error");
          else announce("Ticket search failed: " + error.message + ". You can type a ticket number.", "error");
        });
    }

    function schedule() {
      clearTimeout(timer);
      var q = queryOf(input.value);
      if (q === null) {
        abort();
        listbox.removeAttribute("aria-busy");
        tickets = [];
        listbox.textContent = "";
        close();
        var typed = input.value.trim();
        if (typed && !/^#?\s*\d*$/.test(typed)) {
          announce("Type at least " + minText + " letters to search, or a ticket number.", "hint");
        } else {
          announce("", "idle");
        }
        return;
      }
      timer = setTimeout(function () {
        search(q);
      }, debounceMs);
    }

    input.addEventListener("input", function () {
      if (selected && input.value === selected.label) {
        hidden.value = selected.id;
      } else {
        selected = null;
        hidden.value = input.value;
        if (meta) meta.textContent = "";
      }
      schedule();
    });

    input.addEventListener("keydown", function (event) {
      var count = listbox.children.length;
      switch (event.key) {
        case "ArrowDown":
          event.preventDefault();
          if (!isOpen()) {
            if (tickets.length) {
              open();
              if (event.altKey) return;
              setActive(0);
            } else if (queryOf(input.value) !== null) {
              clearTimeout(timer);
              search(queryOf(input.value));
            }
            return;
          }
          setActive(active < count - 1 ? active + 1 : 0);
          return;
        case "ArrowUp":
          event.preventDefault();
          if (!isOpen()) {
            if (tickets.length) {
              open();
              setActive(count - 1);
            }
            return;
          }
          setActive(active > 0 ? active - 1 : count - 1);
          return;
        case "Home":
          if (isOpen() && count) {
            event.preventDefault();
            setActive(0);
          }
          return;
        case "End":
          if (isOpen() && count) {
            event.preventDefault();
            setActive(count - 1);
          }
          return;
        case "Enter":
          if (isOpen() && active >= 0) {
            event.preventDefault();
            choose(active);
          }
          return;
        case "Escape":
          if (isOpen()) {
            event.preventDefault();
            close();
          } else if (input.value) {
            event.preventDefault();
            input.value = "";
            selected = null;
            hidden.value = "";
            if (meta) meta.textContent = "";
            schedule();
          }
          return;
        case "Tab":
          close();
          return;
        default:
          return;
      }
    });

    input.addEventListener("blur", function () {
      close();
    });

    input.addEventListener("click", function () {
      if (!isOpen() && tickets.length && !selected) open();
    });

    // Keep the focus in the input while the pointer is on the list.
    listbox.addEventListener("mousedown", function (event) {
      event.preventDefault();
    });

    listbox.addEventListener("click", function (event) {
      var option = event.target.closest ? event.target.closest("[role=option]") : null;
      if (!option || !listbox.contains(option)) return;
      choose(number(option.getAttribute("data-index"), -1));
      input.focus();
    });

    listbox.addEventListener("mousemove", function (event) {
      var option = event.target.closest ? event.target.closest("[role=option]") : null;
      if (!option) return;
      var index = number(option.getAttribute("data-index"), -1);
      if (index !== active) setActive(index);
    });
  }

  // -- the form's submit buttons: "Saving…" while the form posts ------------------------------

  var SAVING = "Saving…";
  var SAVING_FALLBACK_MS = 30000; // a post that never navigates (stopped, a download) frees them
  var guarded = [];

  function submitButtons(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      var type = (el.getAttribute("type") || "").toLowerCase();
      if (el.tagName === "BUTTON") return type === "" || type === "submit";
      return el.tagName === "INPUT" && (type === "submit" || type === "image");
    });
  }

  function liveRegion(form) {
    var region = form.querySelector(".cw-saving-status");
    if (!region) {
      region = document.createElement("div");
      region.className = "cw-saving-status cw-visually-hidden";
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      form.appendChild(region);
    }
    return region;
  }

  function release(form) {
    if (!form.hasAttribute("data-cw-saving")) return;
    form.removeAttribute("data-cw-saving");
    form.removeAttribute("aria-busy");
    clearTimeout(form._cwSavingTimer);
    submitButtons(form).forEach(function (button) {
      if (!button.hasAttribute("data-cw-saving-label")) return;
      if (button.tagName === "INPUT") {
        button.value = button.getAttribute("data-cw-saving-label");
      } else {
        button.textContent = "";
        (button._cwSavedNodes || []).forEach(function (node) {
          button.appendChild(node);
        });
        button._cwSavedNodes = null;
      }
      button.removeAttribute("data-cw-saving-label");
      button.disabled = button.hasAttribute("data-cw-was-disabled");
      button.removeAttribute("data-cw-was-disabled");
      button.removeAttribute("aria-disabled");
      button.classList.remove("cw-saving");
    });
    liveRegion(form).textContent = "";
  }

  function hold(form) {
    form.setAttribute("aria-busy", "true");
    submitButtons(form).forEach(function (button) {
      if (button.hasAttribute("data-cw-saving-label")) return;
      if (button.disabled) button.setAttribute("data-cw-was-disabled", "");
      if (button.tagName === "INPUT") {
        button.setAttribute("data-cw-saving-label", button.value);
        if (button.type !== "image") button.value = SAVING;
      } else {
        // (its own nodes are kept, not its HTML: no markup is parsed, Trusted Types stay happy)
        button.setAttribute("data-cw-saving-label", button.textContent);
        button._cwSavedNodes = Array.prototype.slice.call(button.childNodes);
        button.textContent = SAVING;
      }
      button.setAttribute("aria-disabled", "true");
      button.classList.add("cw-saving");
      button.disabled = true;
    });
    liveRegion(form).textContent = SAVING;
    form._cwSavingTimer = setTimeout(function () {
      release(form);
    }, SAVING_FALLBACK_MS);
  }

  function guardForm(form) {
    if (!form || form.hasAttribute("data-cw-submit-guard")) return;
    form.setAttribute("data-cw-submit-guard", "");
    guarded.push(form);
    form.addEventListener("submit", function (event) {
      if (form.hasAttribute("data-cw-saving")) {
        event.preventDefault(); // a second click while the first post is on its way
        return;
      }
      form.setAttribute("data-cw-saving", "");
      // After every submit listener ran and the browser took the form's values (a disabled
      // button would not send its name): hold the buttons, unless a script stopped the post.
      setTimeout(function () {
        if (event.defaultPrevented) release(form);
        else hold(form);
      }, 0);
    });
    // The browser's own validation stopped the submit: nothing is posting.
    form.addEventListener(
      "invalid",
      function () {
        release(form);
      },
      true
    );
  }

  // Back/forward cache: the page comes back as it was left, with the buttons held.
  window.addEventListener("pageshow", function () {
    guarded.forEach(release);
  });

  function init(scope) {
    var roots = (scope || document).querySelectorAll("[data-cw-ticket-search]");
    Array.prototype.forEach.call(roots, setup);
    Array.prototype.forEach.call(roots, function (root) {
      guardForm(root.closest ? root.closest("form") : null);
    });
  }

  window.ConnectWiseTicketSearch = { init: init };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      init();
    });
  } else {
    init();
  }
})();
