import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota verify'.
export const command: Command = {
  name: "verify",
  summary: "not implemented yet",
  help: "Usage: xsota verify (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota verify' is not implemented yet");
  },
};
