package stm32wl5

import (
	"strings"
	"testing"
	"time"
)

// FuzzATShell: any bytes a host types on the UART reach the firmware twin's
// AT shell (lora_command.c's parser as the twin models it) and nothing
// panics, whatever the command does (a reset, a join, a send). Seeds are the commands of ST's
// table with the values hosts send. (Whether each line gets its one status
// line is pinned, line by line, by the shell's unit tests; here the twin
// must only keep running whatever it is told.)
func FuzzATShell(f *testing.F) {
	for _, s := range []string{"AT", "AT?", "ATZ", "AT+VER=?", "AT+DEUI=?", "AT+DEUI=00:80:E1:15:00:00:00:02",
		"AT+APPKEY=2B:7E:15:16:28:AE:D2:A6:AB:F7:15:88:09:CF:4F:3C", "AT+APPKEY=?", "AT+JOIN=1", "AT+SEND=2:1:AABB",
		"AT+ADR=0", "AT+DR=5", "AT+BAND=?", "AT+CLASS=A", "AT+RX1DL=1000", "AT+RX2FQ=869525000", "AT+TXP=1",
		"AT+BAT=?", "AT+CS=?", "AT+LTIME=?", "AT+RFS", "AT+DEUI?", "AT\bT", "AT+SEND=99:0:" + strings.Repeat("A", 600)} {
		f.Add([]byte(s))
	}
	// The twin's log goes nowhere: f.Logf may not be called while fuzzing.
	a := newATRig(f, func(c *Config) { c.Logf = func(string, ...any) {} })
	f.Fuzz(func(t *testing.T, line []byte) {
		a.board.atInput(line)
		a.board.atInput([]byte("\r\n"))
		for {
			select {
			case <-a.board.con.out:
				continue
			case <-time.After(time.Millisecond):
			}
			break
		}
	})
}
