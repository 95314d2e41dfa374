import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota publish'.
export const command: Command = {
  name: "publish",
  summary: "not implemented yet",
  help: "Usage: xsota publish (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota publish' is not implemented yet");
  },
};
