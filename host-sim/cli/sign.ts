import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota sign'.
export const command: Command = {
  name: "sign",
  summary: "not implemented yet",
  help: "Usage: xsota sign (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota sign' is not implemented yet");
  },
};
