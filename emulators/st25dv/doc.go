// Package st25dv is a software twin of the ST ST25DV64KC dynamic NFC tag
// (datasheet DS13519 Rev 2, July 2021, cited as "DS" below; ST application
// note AN4911 for the NDEF layout; ST community threads named where used).
//
// Its job is to let the phone side (an ISO/IEC 15693 reader, through the
// rigs/nfc driver or an emulated PC/SC reader) and the MCU side (the STM32WL5
// firmware twin, through an emulated I2C bus and GPO line) meet in the same
// chip, with the same rules the silicon enforces:
//
//   - 8 KiB user EEPROM in up to four areas (ENDA1..3), with RF/I2C area
//     protection, LOCK_CCFILE, RF and I2C passwords/sessions (DS §4.2, §5.6);
//   - the static system configuration registers (I2C device 0x57) and the
//     dynamic registers at 2000h..2007h (DS §4.3, §4.4, Table 12, Table 13);
//   - the 256-byte Fast Transfer Mode mailbox and its MB_CTRL_Dyn state machine,
//     watchdog included (DS §5.1, Figure 12);
//   - the RF command interpreter: ISO 15693 mandatory/optional commands, the
//     ST custom and fast commands, flag/state handling and error codes (DS §7);
//   - GPO events (DS §5.4) on a bus.Line;
//   - a timing model (DS §7 frame timing, Table 255) spent on a timing.Clock.
//
// The RF side works on frames: an ISO 15693 request without SOF/EOF/CRC in,
// a response without CRC out (flags byte first), (nil, nil) when the chip
// stays silent. The I2C side implements bus.Target.
//
// Where the datasheet is silent (UNCONFIRMED) or disagrees with ST's own
// software (CONFLICT) the code says so in a comment and follows ST's own
// software (RFAL rfal_st25xv.c, the x-cube-nfc7 Drivers/BSP/Components/
// st25dvxxkc driver) or the only field observation available.
package st25dv
