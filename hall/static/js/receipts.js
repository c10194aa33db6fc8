// Bid receipts (API.md "Trust"): each accepted bid's signed receipt is kept in
// this browser, per lot, so the bidder can download them and check the hall's
// published history with `python run.py verify LOT_ID --receipt FILE`.
import { t } from "./common.js";

const key = (lotId) => `receipts:${lotId}`;

export function receiptsOf(lotId) {
  try { return JSON.parse(localStorage.getItem(key(lotId)) || "[]"); } catch { return []; }
}

export function keepReceipt(lotId, receipt) {
  if (!receipt || typeof receipt.seq !== "number") return;
  const kept = receiptsOf(lotId).filter((r) => r.seq !== receipt.seq);
  kept.push(receipt);
  kept.sort((a, b) => a.seq - b.seq);
  try { localStorage.setItem(key(lotId), JSON.stringify(kept)); } catch { /* storage full or off */ }
}

// The download link (hidden while there is nothing to download).
export function showReceipts(box, lotId) {
  const kept = receiptsOf(lotId);
  box.hidden = kept.length === 0;
  box.textContent = "";
  if (!kept.length) return;
  const a = document.createElement("a");
  a.dataset.testid = "receipts-download";
  a.download = `receipts-lot-${lotId}.json`;
  a.href = URL.createObjectURL(new Blob([JSON.stringify(kept, null, 2)], { type: "application/json" }));
  a.textContent = `${t("receipts_download")} (${kept.length})`;
  const help = document.createElement("div");
  help.className = "muted";
  help.textContent = t("receipts_help");
  box.append(a, help);
}
