import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota serve'.
export const command: Command = {
  name: "serve",
  summary: "not implemented yet",
  help: "Usage: xsota serve (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota serve' is not implemented yet");
  },
};
