import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota demo'.
export const command: Command = {
  name: "demo",
  summary: "not implemented yet",
  help: "Usage: xsota demo (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota demo' is not implemented yet");
  },
};
