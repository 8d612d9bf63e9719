// yuqing pages: small progressive script. The pages are rendered on the server; this
// adds live rows over the event stream, ticking countdowns, and forms that call the JSON
// API with the session's CSRF token. Text from the server is only ever inserted as
// server-rendered (escaped) HTML fragments or as textContent.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  // --- the JSON API ---------------------------------------------------------------------

  const HINTS = {
    401: "登录已过期，请重新登录。",
    403: "你的角色不能执行此操作；如需权限请联系管理员。",
    404: "告警不存在或不属于你的部门，请回到列表刷新。",
    409: "告警状态已经变化（可能有人刚办理过），请刷新页面后再试。",
    422: "请检查填写内容：",
    429: "操作过于频繁，请稍后再试。",
  };

  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error(HINTS[401]);
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      let detail = data && data.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => (d.loc || []).slice(-1) + "：" + d.msg).join("；");
      const hint = HINTS[response.status] || "操作失败（" + response.status + "），请稍后重试；持续失败请联系管理员。";
      throw new Error(response.status === 422 ? hint + (detail || "") : hint + (detail ? "（" + detail + "）" : ""));
    }
    return data;
  }

  function formBody(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.value === "") continue;
      body[field.name] = field.dataset.type === "bool" ? field.value === "true" : field.value;
    }
    return body;
  }

  function showSecret(data) {
    const out = document.querySelector("[data-secret]");
    const secret = data && (data.password || data.secret);
    if (!out || !secret) return false;
    out.textContent = "请立即复制并安全转交（只显示这一次）：" + secret;
    out.hidden = false;
    return true;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-api]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
    const error = form.querySelector(".form-error");
    const button = form.querySelector("button[type=submit]");
    if (error) error.textContent = "";
    if (button) button.disabled = true;
    try {
      const data = await api(form.dataset.method || "POST", form.dataset.api, formBody(form));
      if (form.hasAttribute("data-show-secret") && showSecret(data)) {
        if (button) button.disabled = false;
        return; // keep the secret on screen; the list refreshes on the next visit
      }
      location.reload();
    } catch (err) {
      if (error) error.textContent = err.message;
      if (button) button.disabled = false;
    }
  });

  document.querySelector("[data-logout]")?.addEventListener("click", async () => {
    try {
      await api("POST", "/api/logout");
    } finally {
      location.href = "/login";
    }
  });

  // On a phone the filter form starts folded (unless a filter is on): the list comes first.
  for (const box of document.querySelectorAll("details[data-collapse-narrow]:not([data-active])")) {
    if (matchMedia("(max-width: 640px)").matches) box.open = false;
  }

  // --- countdowns -------------------------------------------------------------------------

  function spanText(seconds) {
    const minutes = Math.floor(Math.abs(seconds) / 60);
    const days = Math.floor(minutes / 1440);
    const hours = Math.floor((minutes % 1440) / 60);
    const mins = minutes % 60;
    if (days) return days + "天" + hours + "小时";
    if (hours) return hours + "小时" + mins + "分";
    return mins + "分";
  }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("time[data-countdown]")) {
      const left = (Date.parse(el.dateTime) - now) / 1000;
      el.textContent = (left < 0 ? "超时 " : "剩 ") + spanText(left);
      el.classList.toggle("late", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600);
    }
  }
  tick();
  setInterval(tick, 1000);

  // --- critical alerts: title flash and a short tone ---------------------------------------

  let flashTimer = null;
  const baseTitle = document.title;

  function flashTitle(text) {
    let on = false;
    clearInterval(flashTimer);
    flashTimer = setInterval(() => {
      on = !on;
      document.title = on ? "【" + text + "】" + baseTitle : baseTitle;
    }, 800);
    const stop = () => {
      clearInterval(flashTimer);
      document.title = baseTitle;
    };
    window.addEventListener("focus", stop, { once: true });
    document.addEventListener("click", stop, { once: true });
  }

  function beep() {
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.15;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
    } catch (err) {
      // no audio (autoplay rules): the title flash still shows
    }
  }

  // --- live rows over the event stream -------------------------------------------------------

  const banner = document.getElementById("live-banner");

  function announce(text) {
    if (!banner) return;
    banner.textContent = text;
    banner.hidden = false;
  }

  async function updateRow(table, alert, change) {
    const params = new URLSearchParams(location.search);
    params.set("view", table.dataset.live);
    const response = await fetch("/fragments/alert-row/" + encodeURIComponent(alert.id) + "?" + params, {
      credentials: "same-origin",
    });
    const existing = table.querySelector('tr[data-id="' + CSS.escape(alert.id) + '"]');
    if (response.status === 204) {
      existing?.remove(); // no longer matches the page's filters (e.g. closed)
      return;
    }
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const row = template.content.querySelector("tr");
    if (!row) return;
    row.classList.add("fresh");
    if (existing) existing.replaceWith(row);
    else table.tBodies[0].prepend(row);
    document.querySelector("[data-empty]")?.remove();
    tick();
    if (change === "created" && alert.severity === "critical") {
      flashTitle("特别重大告警");
      beep();
    }
  }

  // Resume after the newest audit row the page was rendered with (the browser sends
  // Last-Event-ID itself when it reconnects), so no change falls in between.
  function connect(since, onAlert) {
    const status = document.querySelector("[data-live-status]");
    const source = new EventSource("/api/stream?last_event_id=" + encodeURIComponent(since || "0"));
    source.onopen = () => {
      if (status) status.textContent = "实时更新：已连接";
      status?.classList.remove("late");
    };
    source.onerror = () => {
      if (status) status.textContent = "实时更新：连接中断，正在自动重连…（如长时间未恢复，请刷新页面）";
      status?.classList.add("late");
    };
    source.addEventListener("alert", (event) => onAlert(JSON.parse(event.data)));
    source.addEventListener("end", () => {
      source.close();
      announce("登录已过期，实时更新已停止。请刷新页面重新登录。");
    });
  }

  const table = document.querySelector("table[data-live]");
  if (table) connect(table.dataset.since, (data) => updateRow(table, data.alert, data.change));

  const detail = document.querySelector("[data-alert-id]");
  if (detail) {
    connect(detail.dataset.since, (data) => {
      if (data.alert.id !== detail.dataset.alertId) return;
      announce("此告警刚被 " + data.actor + " 更新。");
      const link = document.createElement("a");
      link.href = location.href;
      link.textContent = " 刷新查看";
      banner.append(link);
    });
  }

  // --- keyboard: j / k move between rows, Enter opens ----------------------------------------

  document.addEventListener("keydown", (event) => {
    const row = event.target.closest?.("tr[tabindex]");
    if (event.target.matches?.("input, textarea, select")) return;
    if (event.key === "Enter" && row && event.target === row) {
      row.querySelector("a")?.click();
    } else if ((event.key === "j" || event.key === "k") && !event.ctrlKey && !event.metaKey) {
      const rows = [...document.querySelectorAll("tr[tabindex]")];
      if (!rows.length) return;
      const at = rows.indexOf(row);
      const next = at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + (event.key === "j" ? 1 : -1)));
      rows[next].focus();
    }
  });
})();
