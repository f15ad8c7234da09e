// Entry point: builds the stack's role (see program.ts) and exports its outputs.
import { main } from "./program";

export = main();
