// Number formats shared by the console's pages. No DOM here, so
// tests/js/console_format.js can load this file in node and check it.

// A byte count in binary units: whole bytes below 1 KiB, one decimal above
// ("512 B", "12.3 MiB"). Rates arrive as fractions (bytes over a sampled
// span), so bytes are rounded too.
function fmtBytes(n) {
  if (n == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  if (n < 1024) n = Math.round(n); // 1023.6 B is "1.0 KiB", not "1024 B"
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
// A byte rate: "12.3 MiB/s".
function fmtRate(bytesPerSecond) {
  return bytesPerSecond == null ? "–" : fmtBytes(bytesPerSecond) + "/s";
}
function fmtMs(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
