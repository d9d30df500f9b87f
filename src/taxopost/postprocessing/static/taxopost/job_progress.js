// The job page's live progress, served as a file so that a Content-Security-Policy of
// script-src 'self' allows it (TAXOPOST_CSP).
// Poll the job's API resource; reload the page (log, metrics, buttons) once it ends.
(function () {
  const url = document.getElementById("job-progress-script").dataset.url;
  const finished = ["succeeded", "failed", "canceled"];
  async function poll() {
    try {
      const response = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (response.ok) {
        const job = await response.json();
        document.querySelectorAll("progress.job-progress").forEach(bar => { bar.value = job.progress; });
        document.querySelectorAll(".job-percent").forEach(el => { el.textContent = Math.round(job.progress * 100) + "%"; });
        document.querySelectorAll(".job-status").forEach(el => { el.textContent = job.status; });
        const stages = document.querySelector(".job-stages");
        if (stages) {
          stages.innerHTML = "";
          for (const stage of job.stages) {
            const item = document.createElement("li");
            item.textContent = stage.name + " – " + Math.round(stage.progress * 100) + "%";
            stages.appendChild(item);
          }
        }
        if (finished.includes(job.status)) { window.location.reload(); return; }
      }
    } catch (error) { /* a missed poll is retried */ }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 500);
})();
