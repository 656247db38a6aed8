package wire

import (
	"errors"
	"fmt"
	"testing"
)

func TestMessage(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{CodeOK, "Command completed successfully"},
		{CodePending, "Command completed successfully; action pending"},
		{CodeNoMessages, "Command completed successfully; no messages"},
		{CodeAckToDequeue, "Command completed successfully; ack to dequeue"},
		{CodeEndingSession, "Command completed successfully; ending session"},
		{CodeUnknownCommand, "Unknown command"},
		{CodeSyntaxError, "Command syntax error"},
		{CodeUseError, "Command use error"},
		{CodeMissingParam, "Required parameter missing"},
		{CodeValueRange, "Parameter value range error"},
		{CodeValueSyntax, "Parameter value syntax error"},
		{CodeUnimplementedVersion, "Unimplemented protocol version"},
		{CodeUnimplementedCommand, "Unimplemented command"},
		{CodeUnimplementedOption, "Unimplemented option"},
		{CodeUnimplementedExtension, "Unimplemented extension"},
		{CodeBillingFailure, "Billing failure"},
		{CodeNotRenewable, "Object is not eligible for renewal"},
		{CodeNotTransferable, "Object is not eligible for transfer"},
		{CodeAuthentication, "Authentication error"},
		{CodeAuthorization, "Authorization error"},
		{CodeInvalidAuthInfo, "Invalid authorization information"},
		{CodePendingTransfer, "Object pending transfer"},
		{CodeNotPendingTransfer, "Object not pending transfer"},
		{CodeExists, "Object exists"},
		{CodeNotExist, "Object does not exist"},
		{CodeStatusProhibits, "Object status prohibits operation"},
		{CodeAssociationProhibits, "Object association prohibits operation"},
		{CodePolicyError, "Parameter value policy error"},
		{CodeUnimplementedService, "Unimplemented object service"},
		{CodeDataPolicy, "Data management policy violation"},
		{CodeCommandFailed, "Command failed"},
		{CodeFailedClosing, "Command failed; server closing connection"},
		{CodeAuthFailedClosing, "Authentication error; server closing connection"},
		{CodeSessionLimitClosed, "Session limit exceeded; server closing connection"},
		{0, "Undefined Error"},
		{1002, "Undefined Error"},
		{2107, "Undefined Error"},
		{2309, "Undefined Error"},
		{2503, "Undefined Error"},
		{-1, "Undefined Error"},
	}
	for _, tt := range tests {
		if got := Message(tt.code); got != tt.want {
			t.Errorf("Message(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
	if len(messages) != 34 {
		t.Errorf("%d codes defined, want the 34 of the Perl Errorcodes", len(messages))
	}
}

func TestResponseErr(t *testing.T) {
	tests := []struct {
		code    int
		wantErr bool
	}{
		{CodeOK, false}, {CodePending, false}, {CodeEndingSession, false},
		{CodeUnknownCommand, true}, {CodeCommandFailed, true}, {CodeSessionLimitClosed, true},
		{0, true}, {999, true},
	}
	for _, tt := range tests {
		r := &Response{Code: tt.code, Message: "m"}
		err := r.Err()
		if (err != nil) != tt.wantErr {
			t.Errorf("code %d: Err() = %v, want error %v", tt.code, err, tt.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Code != tt.code || e.Message != "m" {
			t.Errorf("code %d: Err() = %#v", tt.code, err)
		}
	}
}

func TestError(t *testing.T) {
	err := fmt.Errorf("get a: %w", Errorf(CodeNotExist, "key %q", "a"))
	if got, want := err.Error(), `get a: wire: 2303 Object does not exist: key "a"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, &Error{Code: CodeNotExist}) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(err, &Error{Code: CodeExists}) {
		t.Error("errors.Is matched another code")
	}
	if got := (&Error{Code: 2400}).Error(); got != "wire: 2400 Command failed" {
		t.Errorf("Error() without message = %q", got)
	}
	if got := CodeOf(err); got != CodeNotExist {
		t.Errorf("CodeOf = %d", got)
	}
	if got := CodeOf(errors.New("x")); got != CodeCommandFailed {
		t.Errorf("CodeOf(plain) = %d", got)
	}
	if got := CodeOf(nil); got != CodeOK {
		t.Errorf("CodeOf(nil) = %d", got)
	}
}

func TestFail(t *testing.T) {
	tests := []struct {
		err     error
		code    int
		message string
	}{
		{nil, 1000, "Command completed successfully"},
		{&Error{Code: 2303}, 2303, "Object does not exist"},
		{fmt.Errorf("x: %w", Errorf(2302, "key %s", "a")), 2302, "Object exists: key a"},
		{errors.New("disk full"), 2400, "Command failed: disk full"},
	}
	for _, tt := range tests {
		r := Fail(tt.err)
		if r.Code != tt.code || r.Message != tt.message {
			t.Errorf("Fail(%v) = %d %q, want %d %q", tt.err, r.Code, r.Message, tt.code, tt.message)
		}
	}
}

func TestSuccessAndClosing(t *testing.T) {
	for code, want := range map[int][2]bool{
		1000: {true, false}, 1500: {true, false}, 2000: {false, false},
		2400: {false, false}, 2500: {false, true}, 2502: {false, true}, 0: {false, false},
	} {
		if got := [2]bool{IsSuccess(code), ClosesConnection(code)}; got != want {
			t.Errorf("code %d: success, closes = %v, want %v", code, got, want)
		}
	}
}
