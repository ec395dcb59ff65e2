// Package vpcd is a virtual contactless PC/SC reader with an ISO 15693 card
// in it, plugged into a real pcsc-lite daemon through the vsmartcard "vpcd"
// driver. The card's RF side is any RFTag — in practice the ST25DV64KC twin
// (emulators/st25dv) — so an application using the real PC/SC stack
// (pcsc_scan, scriptor, the rigs/nfc/pcsc transport over ebfe/scard) talks
// to the twin exactly as it would talk to a tag on a USB reader.
//
// What the virtual reader implements (shared/reference/pcsc-iso15693.md):
//
//   - the PC/SC Part 3 ATR for an ISO 15693 part 3 storage card
//     (RID A0 00 00 03 06, SS 0B; §1.1);
//   - GET DATA FF CA 00 00 (UID, LSB first by default, §1.2);
//   - READ BINARY FF B0 / UPDATE BINARY FF D6 on 4-byte blocks, P1P2 = block
//     number (the HID/Identiv convention, §1.3);
//   - the PC/SC 2.02 Part 3 transparent session FF C2 00 00/01/02 with its
//     data objects (start/end session, RF on/off, timer, transceive 95,
//     answers C0/92/96/97, switch protocol 8F; §2.1);
//   - with Profile ACR1552, additionally the ACS ACR1552U pass-through
//     FF FB 00 00 (§2.2).
//
// The vpcd side (§4): a card is one TCP connection to vpcd's port (35963 for
// "Virtual PCD 00 00", 35964 for "… 00 01"); every message is a 2-byte
// big-endian length and its bytes; a 1-byte message is a control (00 power
// off, 01 power on, 02 reset, 04 get ATR). Insert = connect + tag FieldOn,
// Remove = close + tag FieldOff. Every GET ATR is answered, also while
// "powered off", or pcscd declares the card gone (§4.2). Replies go out in
// one write, and TCP_QUICKACK is re-armed after every read, which takes the
// round trip from ~48 ms (Nagle in vpcd meeting our delayed ACK) to a fraction
// of a millisecond (§4.5).
//
// This is a library package: it never imports rigs/ or suites/.
package vpcd
