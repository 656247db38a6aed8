package wire

import (
	"errors"
	"fmt"
	"strconv"
)

// Result codes, the EPP result codes of RFC 4930 that the Perl framework's
// Errorcodes module maps to messages. Codes below 2000 report success;
// codes from 2000 up report an error, and 2500–2502 also tell the client
// that the server closes the connection.
const (
	CodeOK            = 1000 // Command completed successfully
	CodePending       = 1001 // Command completed successfully; action pending
	CodeNoMessages    = 1300 // Command completed successfully; no messages
	CodeAckToDequeue  = 1301 // Command completed successfully; ack to dequeue
	CodeEndingSession = 1500 // Command completed successfully; ending session

	CodeUnknownCommand = 2000 // Unknown command
	CodeSyntaxError    = 2001 // Command syntax error
	CodeUseError       = 2002 // Command use error
	CodeMissingParam   = 2003 // Required parameter missing
	CodeValueRange     = 2004 // Parameter value range error
	CodeValueSyntax    = 2005 // Parameter value syntax error

	CodeUnimplementedVersion   = 2100 // Unimplemented protocol version
	CodeUnimplementedCommand   = 2101 // Unimplemented command
	CodeUnimplementedOption    = 2102 // Unimplemented option
	CodeUnimplementedExtension = 2103 // Unimplemented extension
	CodeBillingFailure         = 2104 // Billing failure
	CodeNotRenewable           = 2105 // Object is not eligible for renewal
	CodeNotTransferable        = 2106 // Object is not eligible for transfer

	CodeAuthentication  = 2200 // Authentication error
	CodeAuthorization   = 2201 // Authorization error
	CodeInvalidAuthInfo = 2202 // Invalid authorization information

	CodePendingTransfer      = 2300 // Object pending transfer
	CodeNotPendingTransfer   = 2301 // Object not pending transfer
	CodeExists               = 2302 // Object exists
	CodeNotExist             = 2303 // Object does not exist
	CodeStatusProhibits      = 2304 // Object status prohibits operation
	CodeAssociationProhibits = 2305 // Object association prohibits operation
	CodePolicyError          = 2306 // Parameter value policy error
	CodeUnimplementedService = 2307 // Unimplemented object service
	CodeDataPolicy           = 2308 // Data management policy violation

	CodeCommandFailed = 2400 // Command failed

	CodeFailedClosing      = 2500 // Command failed; server closing connection
	CodeAuthFailedClosing  = 2501 // Authentication error; server closing connection
	CodeSessionLimitClosed = 2502 // Session limit exceeded; server closing connection
)

// UndefinedMessage is what Message returns for a code it does not know.
const UndefinedMessage = "Undefined Error"

var messages = map[int]string{
	1000: "Command completed successfully",
	1001: "Command completed successfully; action pending",
	1300: "Command completed successfully; no messages",
	1301: "Command completed successfully; ack to dequeue",
	1500: "Command completed successfully; ending session",
	2000: "Unknown command",
	2001: "Command syntax error",
	2002: "Command use error",
	2003: "Required parameter missing",
	2004: "Parameter value range error",
	2005: "Parameter value syntax error",
	2100: "Unimplemented protocol version",
	2101: "Unimplemented command",
	2102: "Unimplemented option",
	2103: "Unimplemented extension",
	2104: "Billing failure",
	2105: "Object is not eligible for renewal",
	2106: "Object is not eligible for transfer",
	2200: "Authentication error",
	2201: "Authorization error",
	2202: "Invalid authorization information",
	2300: "Object pending transfer",
	2301: "Object not pending transfer",
	2302: "Object exists",
	2303: "Object does not exist",
	2304: "Object status prohibits operation",
	2305: "Object association prohibits operation",
	2306: "Parameter value policy error",
	2307: "Unimplemented object service",
	2308: "Data management policy violation",
	2400: "Command failed",
	2500: "Command failed; server closing connection",
	2501: "Authentication error; server closing connection",
	2502: "Session limit exceeded; server closing connection",
}

// Message returns the RFC 4930 text for code, or UndefinedMessage.
func Message(code int) string {
	if m, ok := messages[code]; ok {
		return m
	}
	return UndefinedMessage
}

// IsSuccess reports whether code is a success code (1000–1999).
func IsSuccess(code int) bool { return code >= 1000 && code < 2000 }

// ClosesConnection reports whether code tells the client that the server
// closes the connection after this response (2500–2502).
func ClosesConnection(code int) bool { return code >= 2500 && code < 2600 }

// Error is a response whose code reports failure, as an error. Response.Err
// returns one; handlers can return one through FromError.
type Error struct {
	Code    int    // the result code
	Message string // the response's message; Message(Code) if it had none
}

// Error returns "wire: CODE MESSAGE".
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = Message(e.Code)
	}
	return "wire: " + strconv.Itoa(e.Code) + " " + msg
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &wire.Error{Code: wire.CodeNotExist}) matches any message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with code and a message that is the code's own
// message followed by the formatted detail.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: Message(code) + ": " + fmt.Sprintf(format, args...)}
}

// CodeOf returns the result code err carries: the Code of the first *Error
// in its chain, or CodeCommandFailed for any other non-nil error; CodeOK
// for nil.
func CodeOf(err error) int {
	if err == nil {
		return CodeOK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeCommandFailed
}
