// GpuMonitor view: per GPU, utilization and memory over the last minutes and the run holding it.
// State comes from widgets/gpu_monitor.py.

function render({ model, el }) {
  el.classList.add("amltrain-widget", "aml-gpus");
  const live = amlEl("span", { class: "aml-live", title: "sampling" });
  const toggle = amlEl("button", {
    class: "aml-button",
    onclick: () => model.send({ type: model.get("refreshing") ? "pause" : "resume" }),
  });
  const message = amlEl("div", { class: "aml-notice" });
  const cards = amlEl("div", { class: "aml-gpu-cards" });
  el.replaceChildren(
    amlEl("div", { class: "aml-header" }, [amlEl("span", { class: "aml-title", text: "GPUs" }), live,
      amlEl("span", { class: "aml-spacer" }), toggle]),
    message, cards);

  function draw() {
    const gpus = model.get("gpus");
    const series = model.get("series");
    live.hidden = !model.get("refreshing");
    toggle.textContent = model.get("refreshing") ? "Pause" : "Resume";
    toggle.hidden = gpus.length === 0;
    message.textContent = model.get("message");
    const secondsAgo = (v) => `${Math.round(v)}s`;
    cards.replaceChildren(...gpus.map((gpu) => {
      const s = series[String(gpu.index)] || { t: [], util: [], mem: [] };
      const now = s.t.length ? s.t[s.t.length - 1] : 0;
      const xs = s.t.map((t) => t - now);
      return amlEl("div", { class: "aml-gpu-card" }, [
        amlEl("div", { class: "aml-row" }, [
          amlEl("b", { text: `GPU ${gpu.index}` }), ` ${gpu.name} `,
          amlEl("span", { class: "aml-muted-text",
            text: `${Math.round(gpu.utilization_pct)}% · ${amlBytes(gpu.memory_used_bytes)} / ${amlBytes(gpu.memory_total_bytes)}`
              + (gpu.temperature_c !== null && gpu.temperature_c !== undefined ? ` · ${gpu.temperature_c}°C` : "") }),
        ]),
        amlEl("div", { class: gpu.holder ? "aml-holder" : "aml-muted-text", text: gpu.holder ? `held by ${gpu.holder}` : "free" }),
        amlChartBlock([{ label: "utilization", xs, ys: s.util, color: AML_COLORS[2] }],
          { title: "utilization %", yMin: 0, yMax: 100, xFormat: secondsAgo, height: 120 }),
        amlChartBlock([{ label: "memory", xs, ys: s.mem, color: AML_COLORS[4] }],
          { title: "memory", yMin: 0, yMax: gpu.memory_total_bytes, yFormat: amlBytes, xFormat: secondsAgo, height: 120 }),
      ]);
    }));
  }

  draw();
  const keys = ["gpus", "series", "message", "refreshing"];
  keys.forEach((k) => model.on(`change:${k}`, draw));
  return () => keys.forEach((k) => model.off(`change:${k}`, draw));
}

export default { render };
