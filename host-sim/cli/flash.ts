import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota flash'.
export const command: Command = {
  name: "flash",
  summary: "not implemented yet",
  help: "Usage: xsota flash (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota flash' is not implemented yet");
  },
};
