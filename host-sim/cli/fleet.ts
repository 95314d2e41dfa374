import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota fleet'.
export const command: Command = {
  name: "fleet",
  summary: "not implemented yet",
  help: "Usage: xsota fleet (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota fleet' is not implemented yet");
  },
};
