/*
 * Host functions implemented in xsota_esp32.c (classic Moddable "@" host-function syntax;
 * this file is compiled by xsc, not tsc: its types are in esp32.d.ts).
 */
function runningSlot() @ "xs_xsota_running_slot";
function nextSlot() @ "xs_xsota_next_slot";
function slotCount() @ "xs_xsota_slot_count";
function restart() @ "xs_xsota_restart";
function freeHeap() @ "xs_xsota_free_heap";
function chipRevision() @ "xs_xsota_chip_revision";
function chipId() @ "xs_xsota_chip_id";
function baseMac() @ "xs_xsota_base_mac";
function antiRollback() @ "xs_xsota_anti_rollback";
function setBootSlot() @ "xs_xsota_set_boot_slot";
function markValid() @ "xs_xsota_mark_valid";
function markInvalid() @ "xs_xsota_mark_invalid";
function rollbackPossible() @ "xs_xsota_rollback_possible";
function runningState() @ "xs_xsota_running_state";

export { runningSlot, nextSlot, slotCount, restart, freeHeap, chipRevision, chipId, baseMac, antiRollback, setBootSlot, markValid, markInvalid, rollbackPossible, runningState };
