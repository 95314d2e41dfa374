import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota keygen'.
export const command: Command = {
  name: "keygen",
  summary: "not implemented yet",
  help: "Usage: xsota keygen (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota keygen' is not implemented yet");
  },
};
