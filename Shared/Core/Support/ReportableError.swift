/// An error that names its own type in a report (the Lambda runtime's `errorType`, an API's error
/// code). Other errors are reported under their Swift type name. Either way the report's message is
/// the error's `description`, which must therefore never contain secrets.
public protocol ReportableError: Error {
    var errorType: String { get }
}
