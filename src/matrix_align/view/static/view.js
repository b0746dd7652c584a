// matrix-align view: search, filters and pages for long lists, controls for the model-call
// panels and the answer diff. Plain DOM, no framework, no network. Everything is wired here
// from data-* attributes and classes: the pages hold no inline script or handler, and no
// text from the data is ever parsed as HTML (only textContent is read or written).
(function () {
  "use strict";

  function $all(root, selector) {
    return Array.prototype.slice.call(root.querySelectorAll(selector));
  }

  // ---- lists: search + filters + pagination, state kept in the URL hash -------------------
  function readHash() {
    // "#q=…&status=…" is list state; "#event-3" is an anchor and is left alone.
    if (location.hash.indexOf("=") < 0) return null;
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }

  function setupList(list) {
    var controls = document.querySelector('[data-list-controls="' + list.id + '"]');
    var pagers = $all(document, '[data-pager-for="' + list.id + '"]');
    var section = list.closest("section") || document;
    var empty = section.querySelector(".list-empty");
    var items = $all(list, "[data-item]");
    var haystacks = items.map(function (item) {
      return item.textContent.toLowerCase();
    });
    var search = controls ? controls.querySelector(".list-search") : null;
    var filters = controls ? $all(controls, ".list-filter") : [];
    var counter = controls ? controls.querySelector(".list-count") : null;
    var state = { q: "", page: 1, size: 50, filters: {} };

    var saved = readHash();
    if (saved) {
      state.q = saved.get("q") || "";
      state.page = Math.max(1, parseInt(saved.get("page") || "1", 10) || 1);
      var size = parseInt(saved.get("size") || "50", 10);
      state.size = isNaN(size) ? 50 : size;
      filters.forEach(function (select) {
        var value = saved.get(select.dataset.key) || "";
        if ($all(select, "option").some(function (o) { return o.value === value; })) {
          select.value = value;
        }
      });
      if (search) search.value = state.q;
    }
    pagers.forEach(function (pager) {
      pager.hidden = false;
      pager.querySelector(".pager-size").value = String(state.size);
    });

    function matches(index) {
      var item = items[index];
      for (var i = 0; i < filters.length; i++) {
        var select = filters[i];
        var wanted = select.value;
        if (!wanted) continue;
        var have = item.dataset[select.dataset.key] || "";
        if (select.dataset.match === "word") {
          if (have.split(" ").indexOf(wanted) < 0) return false;
        } else if (have !== wanted) {
          return false;
        }
      }
      var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
      return terms.every(function (term) {
        return haystacks[index].indexOf(term) >= 0;
      });
    }

    function saveHash() {
      var params = new URLSearchParams();
      if (state.q) params.set("q", state.q);
      filters.forEach(function (select) {
        if (select.value) params.set(select.dataset.key, select.value);
      });
      if (state.page > 1) params.set("page", String(state.page));
      if (state.size !== 50) params.set("size", String(state.size));
      var text = params.toString();
      if (text || readHash()) {
        history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
      }
    }

    function render() {
      var shown = [];
      items.forEach(function (item, index) {
        if (matches(index)) shown.push(item);
      });
      var size = state.size > 0 ? state.size : shown.length || 1;
      var pages = Math.max(1, Math.ceil(shown.length / size));
      state.page = Math.min(Math.max(1, state.page), pages);
      var first = (state.page - 1) * size;
      var visible = new Set(shown.slice(first, first + size));
      items.forEach(function (item) {
        item.hidden = !visible.has(item);
      });
      var status = shown.length
        ? (first + 1) + "–" + Math.min(first + size, shown.length) + " of " + shown.length
        : "0 of 0";
      pagers.forEach(function (pager) {
        pager.querySelector(".pager-status").textContent =
          status + " · page " + state.page + " of " + pages;
        pager.querySelector(".pager-prev").disabled = state.page <= 1;
        pager.querySelector(".pager-next").disabled = state.page >= pages;
      });
      if (counter) {
        counter.textContent = shown.length === items.length
          ? items.length + " in all"
          : shown.length + " of " + items.length + " match";
      }
      if (empty) empty.hidden = shown.length > 0;
      saveHash();
    }

    var timer = null;
    if (search) {
      search.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          state.q = search.value.trim();
          state.page = 1;
          render();
        }, 120);
      });
    }
    filters.forEach(function (select) {
      select.addEventListener("change", function () {
        state.page = 1;
        render();
      });
    });
    pagers.forEach(function (pager) {
      pager.querySelector(".pager-prev").addEventListener("click", function () {
        state.page -= 1;
        render();
        list.scrollIntoView({ block: "start" });
      });
      pager.querySelector(".pager-next").addEventListener("click", function () {
        state.page += 1;
        render();
        list.scrollIntoView({ block: "start" });
      });
      pager.querySelector(".pager-size").addEventListener("change", function (event) {
        state.size = parseInt(event.target.value, 10) || 0;
        state.page = 1;
        render();
      });
    });
    render();
    list.dataset.ready = "true"; // lets tests (and people) know the list is live
  }

  // ---- model calls: filter by stage, expand or collapse all --------------------------------
  function setupCalls(toolbar) {
    var section = toolbar.closest("section");
    var calls = $all(section, "details.call");
    var stage = toolbar.querySelector(".calls-stage");
    stage.addEventListener("change", function () {
      calls.forEach(function (call) {
        call.hidden = Boolean(stage.value) && call.dataset.stage !== stage.value;
      });
    });
    function setAll(open) {
      calls.forEach(function (call) {
        if (!call.hidden) call.open = open;
      });
    }
    toolbar.querySelector(".calls-expand").addEventListener("click", function () {
      setAll(true);
    });
    toolbar.querySelector(".calls-collapse").addEventListener("click", function () {
      setAll(false);
    });
  }

  // A link to #call-N or #event-N opens what it points at.
  function openTarget() {
    var id = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (!/^(call|event)-\d+$/.test(id)) return;
    var target = document.getElementById(id);
    if (target && target.tagName === "DETAILS") target.open = true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    $all(document, "[data-list]").forEach(setupList);
    $all(document, "[data-calls-toolbar]").forEach(setupCalls);
    $all(document, ".diff-toggle").forEach(function (box) {
      var answers = box.closest("section").querySelector(".answers");
      box.addEventListener("change", function () {
        answers.classList.toggle("diff-on", box.checked);
      });
    });
    // Long texts in lists are clamped; a click opens or closes one (not when selecting text).
    document.addEventListener("click", function (event) {
      var clamp = event.target.closest(".clamp, .clamp-long");
      if (!clamp || event.target.closest("a") || String(window.getSelection())) return;
      clamp.classList.toggle("expanded");
    });
    window.addEventListener("hashchange", openTarget);
    openTarget();
    document.body.dataset.viewReady = "true";
  });
})();
