// Package vpcd is a virtual contactless PC/SC reader with an ISO 15693 card
// in it, plugged into a real pcsc-lite daemon through the vsmartcard "vpcd"
// driver. The card's RF side is any RFTag — in practice the ST25DV64KC twin
// (emulators/st25dv) — so an application using the real PC/SC stack
// (pcsc_scan, scriptor, the rigs/nfc/pcsc transport over ebfe/scard) talks
// to the twin exactly as it would talk to a tag on a USB reader.
//
// What the virtual reader implements:
//
//   - the PC/SC Part 3 ATR for an ISO 15693 part 3 storage card
//     (RID A0 00 00 03 06, SS 0B; layout as in the SCM/Identiv SCL3711 and
//     CLOUD 47x0 F manuals, "ATR for contactless storage user tokens", and
//     pcsc-tools smartcard_list.txt);
//   - GET DATA FF CA 00 00 (UID, LSB first by default; ACS ACR1281U and
//     SCL3711 manuals; PC/SC leaves the byte order open);
//   - READ BINARY FF B0 / UPDATE BINARY FF D6 on 4-byte blocks, P1P2 = block
//     number (the HID/Identiv convention: HID OMNIKEY sample code
//     ExampleWithIso15693.cs, SCL3711 manual);
//   - the PC/SC 2.02 Part 3 transparent session FF C2 00 00/01/02 with its
//     data objects (start/end session, RF on/off, timer, transceive 95,
//     answers C0/92/96/97, switch protocol 8F; PC/SC Part 3 Supplemental
//     Document for Contactless ICCs rev 2.02, as implemented in
//     wsrf2009/contactless-driver mod/src/pcsc.c);
//   - with Profile ACR1552, additionally the ACS ACR1552U pass-through
//     FF FB 00 00 (ACS REF-ACR1552U-Series manual, "Pass Through").
//
// The vpcd side (frankmorgner/vsmartcard virtualsmartcard/doc/api.txt,
// src/vpcd/vpcd.c): a card is one TCP connection to vpcd's port (35963 for
// "Virtual PCD 00 00", 35964 for "… 00 01"); every message is a 2-byte
// big-endian length and its bytes; a 1-byte message is a control (00 power
// off, 01 power on, 02 reset, 04 get ATR). Insert = connect + tag FieldOn,
// Remove = close + tag FieldOff. Every GET ATR is answered, also while
// "powered off", or pcscd declares the card gone (vpcd.c vicc_present is a
// GET ATR, polled by pcscd every 400 ms). Replies go out in
// one write, and TCP_QUICKACK is re-armed after every read, which takes the
// round trip from ~48 ms (Nagle in vpcd meeting our delayed ACK) to a fraction
// of a millisecond (vpcd 0.8 sends length and body in two send() calls,
// fixed upstream in vsmartcard PR #252, first released in 0.9; man 7 tcp).
//
// This is a library package: it never imports rigs/ or suites/.
package vpcd
