// `npm pack` runs this first: the library itself is the file every Confab
// deployment serves (public/confab.js, with its types), so the package and
// the bundled pages are built on the same bytes. The copies are not kept
// in git (.gitignore).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
for (const f of ["confab.js", "confab.d.ts"]) {
  fs.copyFileSync(path.join(here, "../../public", f), path.join(here, f));
}
