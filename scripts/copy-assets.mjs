// Copies the vendored front-end files from node_modules into campaign/static/vendor.
import { copyFileSync, mkdirSync } from "node:fs";

const target = "campaign/static/vendor";
mkdirSync(target, { recursive: true });
const files = {
  "node_modules/htmx.org/dist/htmx.min.js": "htmx.min.js",
  "node_modules/chart.js/dist/chart.umd.min.js": "chart.umd.min.js",
};
for (const [from, to] of Object.entries(files)) {
  copyFileSync(from, `${target}/${to}`);
}
console.log(`copied ${Object.keys(files).length} assets into ${target}`);
