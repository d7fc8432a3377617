//! The connector's OpenAPI (Swagger 2.0) document: every operation of the route contract
//! with the Logic Apps / Power Platform extensions, built from one source in the code.
//!
//! Owns: what the document says (operations, parameters, response schemas, status codes,
//! headers, `x-ms-*` annotations) and how it follows the configuration: the host and base
//! path from the base URL it is given, the security definitions of what the daemon
//! requires (`auth.basic_file`, `auth.api_key_file` and its header), and the default of
//! the `folder` parameter when `[watch]` is on. `GET /openapi.json`, `filetrigger openapi`
//! and `connector/apiDefinition.swagger.json` all come from [`Spec::document`].
//! Does not own: the base URL (`routes::url` for a request, `cli` for the command line),
//! the routes themselves (`routes`), or who may use which folder (the document declares
//! the `folder` parameter with its dropdown; the dropdown's source, `GET /watches`, lists
//! only the caller's folders).

use serde_json::{json, Map, Value};

use crate::config::Settings;

/// The name of the folder `[watch]` configures (`crate::folder::DEFAULT`).
const DEFAULT_FOLDER: &str = "default";
use crate::routes::read::{DEFAULT_FILE_COUNT, DEFAULT_TOP, MAX_FILE_COUNT, MAX_TOP};
use crate::routes::wait::DEFAULT_TIMEOUT_S;
/// Longest relative path or glob the document lets a client send: keeps every URL under
/// the gateway's 2,048 characters with room for the rest.
const MAX_PATH_CHARS: u32 = 1024;
/// A consumer name, as `config::valid_consumer_name` checks it.
const CONSUMER_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// What the document depends on in the configuration; built once, rendered per request.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Basic authentication is required (`auth.basic_file`).
    basic: bool,
    /// An API key is required in this header (`auth.api_key_file`, `auth.api_key_header`).
    api_key_header: Option<String>,
    /// `[watch]` is on: the folder `default` exists.
    default_folder: bool,
    /// `trigger.retry_after_s`, for the descriptions.
    retry_after_s: u32,
    /// `actions.max_wait_s`: the wait's longest `timeout`.
    max_wait_s: u64,
}

impl Spec {
    /// The parts of `settings` the document reflects.
    pub fn new(settings: &Settings) -> Spec {
        Spec {
            basic: settings.auth.basic_file.is_some(),
            api_key_header: settings
                .auth
                .api_key_file
                .as_ref()
                .map(|_| settings.auth.api_key_header.clone()),
            default_folder: !settings.watch.dir.as_os_str().is_empty(),
            retry_after_s: settings.trigger.retry_after_s,
            max_wait_s: settings.actions.max_wait_s,
        }
    }

    /// The whole document for clients that reach the daemon at `base_url` (absolute:
    /// scheme, host, optional port and path prefix, no trailing `/`).
    pub fn document(&self, base_url: &str) -> Value {
        let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", base_url));
        let (host, base_path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut doc = json!({
            "swagger": "2.0",
            "info": {
                "title": "filetrigger",
                "description": "Triggers a workflow for each file that arrives in a watched folder on a file server, with actions to get, list, wait for, move and delete its files. Each completed file is offered once, in arrival order, even across restarts.",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "host": host,
            "basePath": base_path,
            "schemes": [scheme.to_ascii_lowercase()],
            "consumes": [],
            "produces": ["application/json"],
            "paths": self.paths(),
            "definitions": definitions(),
            "parameters": self.shared_parameters(),
            "responses": shared_responses(),
            "tags": [],
            "x-ms-connector-metadata": [
                {"propertyName": "Categories", "propertyValue": "Productivity;IT Operations"},
            ],
            "x-ms-capabilities": {
                "testConnection": {"operationId": "ListFolders", "parameters": {}}
            },
        });
        let (definitions, security) = self.security();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("securityDefinitions".into(), definitions);
            obj.insert("security".into(), security);
        }
        doc
    }

    /// `securityDefinitions` and `security`: what the daemon requires; either method is
    /// accepted when both are configured, so they are alternatives.
    fn security(&self) -> (Value, Value) {
        let mut defs = Map::new();
        let mut any = Vec::new();
        if self.basic {
            defs.insert(
                "basic_auth".into(),
                json!({"type": "basic", "description": "A user of the daemon's auth.basic_file (htpasswd)."}),
            );
            any.push(json!({"basic_auth": []}));
        }
        if let Some(header) = &self.api_key_header {
            defs.insert(
                "api_key".into(),
                json!({
                    "type": "apiKey",
                    "in": "header",
                    "name": header,
                    "description": "A key of the daemon's auth.api_key_file.",
                }),
            );
            any.push(json!({"api_key": []}));
        }
        (Value::Object(defs), Value::Array(any))
    }

    fn auth_on(&self) -> bool {
        self.basic || self.api_key_header.is_some()
    }

    /// Parameters several operations share, referenced as `#/parameters/NAME`.
    fn shared_parameters(&self) -> Value {
        let mut folder = json!({
            "name": "folder",
            "in": "path",
            "required": true,
            "type": "string",
            "x-ms-summary": "Folder",
            "description": "The watched folder (its name in the daemon's configuration).",
            "x-ms-url-encoding": "single",
            "x-ms-dynamic-values": {
                "operationId": "ListFolders",
                "value-collection": "value",
                "value-path": "name",
                "value-title": "name",
            },
            "x-example": DEFAULT_FOLDER,
        });
        if self.default_folder {
            if let Some(obj) = folder.as_object_mut() {
                obj.insert("default".into(), json!(DEFAULT_FOLDER));
            }
        }
        json!({
            "folder": folder,
            "triggerState": {
                "name": "triggerState",
                "in": "query",
                "required": false,
                "type": "string",
                "format": "date-time",
                "x-ms-summary": "Trigger state",
                "description": "The cursor: files indexed after this instant (RFC 3339) are offered. Set by the daemon in Location; leave it empty.",
                "x-ms-visibility": "internal",
            },
            "consumer": {
                "name": "consumer",
                "in": "query",
                "required": false,
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "pattern": CONSUMER_PATTERN,
                "x-ms-summary": "Consumer name",
                "description": "Name this workflow (1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'): the daemon then keeps its position, so a workflow disabled and enabled again, or saved again, continues where it stood instead of skipping the files that came meanwhile. One name per workflow.",
                "x-ms-visibility": "advanced",
            },
            "content": {
                "name": "content",
                "in": "query",
                "required": false,
                "type": "string",
                "enum": ["inline", "none"],
                "default": "inline",
                "x-ms-summary": "Include content",
                "description": "inline: the file's content comes in the body (base64, up to the daemon's size limit); none: properties only, with a contentLink to Get file content.",
                "x-ms-visibility": "advanced",
            },
            "path": {
                "name": "path",
                "in": "query",
                "required": true,
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_PATH_CHARS,
                "x-ms-summary": "File path",
                "description": "The file's path relative to the watched folder, as the trigger's File path gives it (e.g. invoices/0042.pdf).",
                "x-ms-visibility": "important",
            },
            "version": {
                "name": "version",
                "in": "query",
                "required": true,
                "type": "string",
                "format": "date-time",
                "x-ms-summary": "Version",
                "description": "The file version to act on: its Indexed at from the trigger. A file changed since is refused (409), never touched.",
                "x-ms-visibility": "important",
            },
        })
    }

    fn paths(&self) -> Value {
        let mut paths = json!({
            "/watches": {"get": self.list_folders()},
            "/watches/{folder}/trigger": {"get": self.on_new_file(true)},
            "/watches/{folder}/batch": {"get": self.on_new_files()},
            "/watches/{folder}/files": {
                "get": self.list_files(),
                "delete": self.delete_file(),
            },
            "/watches/{folder}/properties": {"get": self.get_file_properties()},
            "/watches/{folder}/content": {"get": self.get_file_content()},
            "/watches/{folder}/wait": {"get": self.wait_for_file()},
            "/watches/{folder}/move": {"post": self.move_file()},
            "/watches/{folder}/consumers": {"get": self.list_consumers()},
            "/watches/{folder}/consumers/{consumer}": {"delete": self.delete_consumer()},
            "/watches/{folder}/subscriptions": {
                "x-ms-notification-content": {
                    "description": "A new file, POSTed to the workflow's callback: the same File the polling trigger returns (X-Filetrigger-Stamp names its version).",
                    "schema": {"$ref": "#/definitions/File"},
                },
                "post": self.subscribe(),
                "get": self.list_subscriptions(),
            },
            "/watches/{folder}/subscriptions/{id}": {
                "get": self.get_subscription(),
                "delete": self.unsubscribe(),
            },
            "/watches/{folder}/waits": {
                "x-ms-notification-content": {
                    "description": "The end of the wait, POSTed to the workflow's callback: found (with the File) or timedOut.",
                    "schema": {"$ref": "#/definitions/WaitResult"},
                },
                "post": self.wait_webhook(),
            },
            "/watches/{folder}/waits/{id}": {"delete": self.cancel_wait_webhook()},
            "/openapi.json": {"get": self.get_openapi()},
        });
        if let Some(obj) = paths.as_object_mut() {
            obj.insert("/trigger".into(), json!({"get": self.on_new_file(false)}));
        }
        paths
    }

    /// The error answers every operation can give: `401` when authentication is on,
    /// `414` for a request target over the daemon's limit.
    fn responses(&self, mut ok: Map<String, Value>, errors: &[u16]) -> Value {
        if self.auth_on() {
            ok.insert("401".into(), json!({"$ref": "#/responses/Unauthorized"}));
        }
        for code in errors {
            let name = match code {
                400 => "BadRequest",
                403 => "Forbidden",
                404 => "NotFound",
                408 => "RequestTimeout",
                409 => "Conflict",
                416 => "RangeNotSatisfiable",
                503 => "Unavailable",
                _ => continue,
            };
            if *code == 403 && !self.auth_on() {
                continue;
            }
            ok.insert(
                code.to_string(),
                json!({"$ref": format!("#/responses/{name}")}),
            );
        }
        ok.insert("414".into(), json!({"$ref": "#/responses/UriTooLong"}));
        Value::Object(ok)
    }

    fn list_folders(&self) -> Value {
        json!({
            "operationId": "ListFolders",
            "summary": "List folders",
            "description": "Lists the watched folders this connection may use. It fills the Folder dropdown of every other operation.",
            "x-ms-visibility": "advanced",
            "parameters": [],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The folders this connection may use.",
                    "schema": {
                        "type": "object",
                        "required": ["value"],
                        "properties": {
                            "value": {
                                "type": "array",
                                "x-ms-summary": "Folders",
                                "description": "The folders.",
                                "items": {"$ref": "#/definitions/Folder"},
                            }
                        }
                    }
                }
            })), &[]),
        })
    }

    /// `OnNewFile` at `/watches/{folder}/trigger` (`named`), or the deprecated internal
    /// `OnNewFileDefaultFolder` at `/trigger`.
    fn on_new_file(&self, named: bool) -> Value {
        let mut params = vec![
            json!({"$ref": "#/parameters/triggerState"}),
            json!({"$ref": "#/parameters/consumer"}),
            json!({"$ref": "#/parameters/content"}),
        ];
        if named {
            params.insert(0, json!({"$ref": "#/parameters/folder"}));
        }
        let mut op = json!({
            "operationId": if named { "OnNewFile" } else { "OnNewFileDefaultFolder" },
            "summary": if named { "When a file arrives" } else { "When a file arrives (default folder)" },
            "description": format!(
                "Triggers once for each file that arrives in the folder, oldest first, with its properties and content. While more files wait the daemon asks to be called again at once; otherwise every {} seconds.",
                self.retry_after_s
            ),
            "x-ms-visibility": if named { "important" } else { "internal" },
            "x-ms-trigger": "single",
            "x-ms-trigger-hint": "To see it work, copy a file into the watched folder.",
            "x-ms-trigger-metadata": {"kind": "query", "mode": "polling"},
            "parameters": params,
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The next file. Location holds the cursor after it.",
                    "schema": {"$ref": "#/definitions/File"},
                    "headers": poll_headers(),
                },
                "202": {"description": "No new file yet: call Location after Retry-After seconds.", "headers": poll_headers()},
            })), &[400, 403, 404, 503]),
        });
        if !named {
            if let Some(o) = op.as_object_mut() {
                o.insert("deprecated".into(), json!(true));
            }
        }
        op
    }

    fn on_new_files(&self) -> Value {
        json!({
            "operationId": "OnNewFiles",
            "summary": "When files arrive (batch)",
            "description": "Triggers for the files that arrived in the folder, up to Maximum file count per call, oldest first: the designer splits the array so each file starts its own run. A batch also stays within the daemon's byte budget (trigger.batch_max_bytes); a file too large to inline comes without content, contentOmitted saying why.",
            "x-ms-visibility": "important",
            "x-ms-trigger": "batch",
            "x-ms-trigger-hint": "To see it work, copy a few files into the watched folder.",
            "x-ms-trigger-metadata": {"kind": "query", "mode": "polling"},
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {"$ref": "#/parameters/triggerState"},
                {
                    "name": "maxFileCount",
                    "in": "query",
                    "required": false,
                    "type": "integer",
                    "format": "int32",
                    "minimum": 1,
                    "maximum": MAX_FILE_COUNT,
                    "default": DEFAULT_FILE_COUNT,
                    "x-ms-summary": "Maximum file count",
                    "description": "The most files one call returns (1 to 100).",
                    "x-ms-visibility": "advanced",
                },
                {"$ref": "#/parameters/consumer"},
                {"$ref": "#/parameters/content"},
            ],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The next files, oldest first. Location holds the cursor after the last one.",
                    "schema": {
                        "type": "array",
                        "x-ms-summary": "Files",
                        "items": {"$ref": "#/definitions/File"},
                    },
                    "headers": poll_headers(),
                },
                "202": {"description": "No new file yet: call Location after Retry-After seconds.", "headers": poll_headers()},
            })), &[400, 403, 404, 503]),
        })
    }

    fn list_files(&self) -> Value {
        json!({
            "operationId": "ListFiles",
            "summary": "List files",
            "description": "Lists the folder's files in the order they arrived, after a given version, one page at a time (nextLink for the next page).",
            "x-ms-visibility": "advanced",
            "x-ms-pageable": {"nextLinkName": "nextLink"},
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {
                    "name": "after",
                    "in": "query",
                    "required": false,
                    "type": "string",
                    "format": "date-time",
                    "x-ms-summary": "Arrived after",
                    "description": "Only files indexed after this instant (RFC 3339, e.g. a file's Indexed at). Empty: from the oldest.",
                    "x-ms-visibility": "advanced",
                },
                {
                    "name": "top",
                    "in": "query",
                    "required": false,
                    "type": "integer",
                    "format": "int32",
                    "minimum": 1,
                    "maximum": MAX_TOP,
                    "default": DEFAULT_TOP,
                    "x-ms-summary": "Page size",
                    "description": "The most files one page holds (1 to 1000).",
                    "x-ms-visibility": "advanced",
                },
            ],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "One page of files.",
                    "schema": {
                        "type": "object",
                        "required": ["value"],
                        "properties": {
                            "value": {
                                "type": "array",
                                "x-ms-summary": "Files",
                                "description": "The files of this page, oldest first.",
                                "items": {"$ref": "#/definitions/FileProperties"},
                            },
                            "nextLink": {
                                "type": "string",
                                "x-ms-summary": "Next page link",
                                "description": "The URL of the next page; absent on the last page.",
                                "x-ms-visibility": "advanced",
                            },
                        }
                    }
                }
            })), &[400, 403, 404, 503]),
        })
    }

    fn get_file_properties(&self) -> Value {
        json!({
            "operationId": "GetFileProperties",
            "summary": "Get file properties",
            "description": "Gets the properties of the version of a file the daemon indexed.",
            "x-ms-visibility": "advanced",
            "parameters": [{"$ref": "#/parameters/folder"}, {"$ref": "#/parameters/path"}],
            "responses": self.responses(obj(json!({
                "200": {"description": "The file's properties.", "schema": {"$ref": "#/definitions/FileProperties"}}
            })), &[400, 403, 404, 503]),
        })
    }

    fn get_file_content(&self) -> Value {
        json!({
            "operationId": "GetFileContent",
            "summary": "Get file content",
            "description": "Gets the content of a file as it was indexed, as raw bytes with its content type. Large files can be fetched in chunks (HTTP Range), through the on-premises data gateway too: turn on Allow chunking in the action's settings.",
            "x-ms-visibility": "important",
            "x-ms-capabilities": {"chunkTransfer": true},
            "produces": ["application/octet-stream", "*/*"],
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {"$ref": "#/parameters/path"},
                {
                    "name": "version",
                    "in": "query",
                    "required": false,
                    "type": "string",
                    "format": "date-time",
                    "x-ms-summary": "Version",
                    "description": "The version expected (the file's Indexed at); if the file changed since, the action fails (409) instead of returning other bytes. Empty: the version indexed now.",
                    "x-ms-visibility": "advanced",
                },
            ],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The file's bytes.",
                    "schema": {"type": "string", "format": "binary", "x-ms-summary": "File content"},
                    "headers": content_headers(false),
                },
                "206": {
                    "description": "The requested range of the file's bytes.",
                    "schema": {"type": "string", "format": "binary", "x-ms-summary": "File content"},
                    "headers": content_headers(true),
                },
                "304": {"description": "The version named by If-None-Match is the current one."},
            })), &[400, 403, 404, 409, 416, 503]),
        })
    }

    fn wait_for_file(&self) -> Value {
        json!({
            "operationId": "WaitForFile",
            "summary": "Wait for a file",
            "description": "Waits until a file whose path matches a pattern arrives, or the timeout passes. The action holds no connection open: the daemon answers 202 with the state in Location until it is done, so the wait survives restarts of the workflow engine and of the daemon.",
            "x-ms-visibility": "important",
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {
                    "name": "glob",
                    "in": "query",
                    "required": true,
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_PATH_CHARS,
                    "x-ms-summary": "File name pattern",
                    "description": "A glob on the file's relative path, e.g. reports/*.csv or **/*.pdf.",
                    "x-ms-visibility": "important",
                },
                {
                    "name": "timeout",
                    "in": "query",
                    "required": false,
                    "type": "integer",
                    "format": "int32",
                    "minimum": 1,
                    "maximum": self.max_wait_s,
                    "default": DEFAULT_TIMEOUT_S.min(self.max_wait_s),
                    "x-ms-summary": "Timeout (seconds)",
                    "description": "How long to wait, in seconds (at most the daemon's actions.max_wait_s).",
                    "x-ms-visibility": "advanced",
                },
                {"$ref": "#/parameters/content"},
                {
                    "name": "since",
                    "in": "query",
                    "required": false,
                    "type": "string",
                    "format": "date-time",
                    "x-ms-summary": "Arrived after",
                    "description": "Only files indexed after this instant count (RFC 3339). Empty: files that arrive after the wait began.",
                    "x-ms-visibility": "advanced",
                },
                {
                    "name": "deadline",
                    "in": "query",
                    "required": false,
                    "type": "string",
                    "format": "date-time",
                    "x-ms-summary": "Deadline",
                    "description": "When the wait ends (set by the daemon in Location).",
                    "x-ms-visibility": "internal",
                },
                {
                    "name": "scanned",
                    "in": "query",
                    "required": false,
                    "type": "string",
                    "format": "date-time",
                    "x-ms-summary": "Scanned up to",
                    "description": "How far earlier calls of a long wait walked the index (set by the daemon in Location).",
                    "x-ms-visibility": "internal",
                },
            ],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The wait is over: a matching file arrived (status found), or the timeout passed (status timedOut).",
                    "schema": {"$ref": "#/definitions/WaitResult"},
                },
                "202": {"description": "Still waiting: call Location after Retry-After seconds.", "headers": poll_headers()},
            })), &[400, 403, 404, 503]),
        })
    }

    fn move_file(&self) -> Value {
        json!({
            "operationId": "MoveFile",
            "summary": "Move file",
            "description": "Moves (renames) a version of a file to another path in the same folder, creating missing folders. A moved file is not offered again. Needs actions.allow_write = true in the daemon.",
            "x-ms-visibility": "important",
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {"$ref": "#/parameters/path"},
                {"$ref": "#/parameters/version"},
                {
                    "name": "to",
                    "in": "query",
                    "required": true,
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_PATH_CHARS,
                    "x-ms-summary": "Destination path",
                    "description": "The new path relative to the watched folder, e.g. done/0042.pdf. An existing file there is never replaced (409).",
                    "x-ms-visibility": "important",
                },
            ],
            "responses": self.responses(obj(json!({
                "200": {"description": "The moved file's properties (path is the new one).", "schema": {"$ref": "#/definitions/FileProperties"}}
            })), &[400, 403, 404, 409, 503]),
        })
    }

    fn delete_file(&self) -> Value {
        json!({
            "operationId": "DeleteFile",
            "summary": "Delete file",
            "description": "Deletes a version of a file. A file changed since that version is refused (409), never deleted. Needs actions.allow_write = true in the daemon.",
            "x-ms-visibility": "important",
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {"$ref": "#/parameters/path"},
                {"$ref": "#/parameters/version"},
            ],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The file was deleted.",
                    "schema": {
                        "type": "object",
                        "required": ["deleted", "version"],
                        "properties": {
                            "deleted": {"type": "string", "x-ms-summary": "Deleted path", "description": "The path of the deleted file."},
                            "version": {"type": "string", "format": "date-time", "x-ms-summary": "Version", "description": "The deleted version (its Indexed at)."},
                        }
                    }
                }
            })), &[400, 403, 404, 409, 503]),
        })
    }

    fn list_consumers(&self) -> Value {
        json!({
            "operationId": "ListConsumers",
            "summary": "List consumers",
            "description": "Lists the folder's named consumers (the Consumer name of the triggers): each one's position and how many files wait behind it.",
            "x-ms-visibility": "advanced",
            "parameters": [{"$ref": "#/parameters/folder"}],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The folder's consumers.",
                    "schema": {
                        "type": "object",
                        "required": ["value"],
                        "properties": {
                            "value": {
                                "type": "array",
                                "x-ms-summary": "Consumers",
                                "description": "The consumers, by name.",
                                "items": {"$ref": "#/definitions/Consumer"},
                            }
                        }
                    }
                }
            })), &[403, 404, 503]),
        })
    }

    fn delete_consumer(&self) -> Value {
        json!({
            "operationId": "DeleteConsumer",
            "summary": "Delete consumer",
            "description": "Forgets a named consumer's position: its next first call starts at now. The files are not touched.",
            "x-ms-visibility": "advanced",
            "parameters": [
                {"$ref": "#/parameters/folder"},
                {
                    "name": "consumer",
                    "in": "path",
                    "required": true,
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": CONSUMER_PATTERN,
                    "x-ms-summary": "Consumer name",
                    "description": "The consumer to forget.",
                    "x-ms-url-encoding": "single",
                    "x-ms-dynamic-values": {
                        "operationId": "ListConsumers",
                        "parameters": {"folder": {"parameter": "folder"}},
                        "value-collection": "value",
                        "value-path": "name",
                        "value-title": "name",
                    },
                },
            ],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The consumer was forgotten.",
                    "schema": {
                        "type": "object",
                        "required": ["deleted"],
                        "properties": {
                            "deleted": {"type": "string", "x-ms-summary": "Deleted consumer", "description": "Its name."},
                        }
                    }
                }
            })), &[400, 403, 404, 503]),
        })
    }

    /// The body of the webhook trigger's subscribe and of the webhook wait: the callback
    /// (filled in by the engine) and `extra` properties.
    fn callback_body(&self, summary: &str, extra: Value) -> Value {
        let mut props = json!({
            "callbackUrl": {
                "type": "string",
                "x-ms-notification-url": true,
                "x-ms-visibility": "internal",
                "x-ms-summary": "Callback URL",
                "description": "Where the daemon POSTs (set by the workflow engine). It must be https and its host in the daemon's webhook.allowed_hosts.",
            },
        });
        if let (Some(p), Value::Object(extra)) = (props.as_object_mut(), extra) {
            p.extend(extra);
        }
        json!({
            "name": "body",
            "in": "body",
            "required": true,
            "x-ms-summary": summary,
            "description": summary,
            "schema": {
                "type": "object",
                "required": ["callbackUrl"],
                "properties": props,
            },
        })
    }

    fn id_parameter(what: &str) -> Value {
        json!({
            "name": "id",
            "in": "path",
            "required": true,
            "type": "string",
            "x-ms-summary": format!("{what} id"),
            "description": format!("The {} id the daemon returned.", what.to_ascii_lowercase()),
            "x-ms-url-encoding": "single",
        })
    }

    fn subscribe(&self) -> Value {
        json!({
            "operationId": "OnNewFileWebhook",
            "summary": "When a file arrives (instant)",
            "description": "Triggers once for each file that arrives in the folder, oldest first, pushed by the daemon to the workflow as soon as it is indexed (no polling). The daemon remembers its position: files that arrive while the workflow cannot be reached are delivered once it can (retried with backoff, paused after the daemon's webhook.pause_after_s).",
            "x-ms-visibility": "important",
            "x-ms-trigger": "single",
            "x-ms-trigger-hint": "To see it work, copy a file into the watched folder.",
            "consumes": ["application/json"],
            "parameters": [
                {"$ref": "#/parameters/folder"},
                self.callback_body("Subscription", json!({
                    "glob": {
                        "type": "string",
                        "maxLength": MAX_PATH_CHARS,
                        "x-ms-summary": "File name pattern",
                        "description": "Only files whose name (or, with a /, relative path) matches this glob, e.g. *.csv. Empty: every file.",
                        "x-ms-visibility": "advanced",
                    },
                    "mode": {
                        "type": "string",
                        "enum": ["single", "batch"],
                        "default": "single",
                        "x-ms-summary": "Mode",
                        "description": "single: one File per call; batch: an array of up to maxFileCount Files per call.",
                        "x-ms-visibility": "internal",
                    },
                    "maxFileCount": {
                        "type": "integer",
                        "format": "int32",
                        "minimum": 1,
                        "maximum": MAX_FILE_COUNT,
                        "default": DEFAULT_FILE_COUNT,
                        "x-ms-summary": "Maximum file count",
                        "description": "With mode batch: the most files one call carries.",
                        "x-ms-visibility": "internal",
                    },
                    "content": {
                        "type": "string",
                        "enum": ["inline", "none"],
                        "default": "inline",
                        "x-ms-summary": "Include content",
                        "description": "inline: the content comes in the call; none: properties only, with a contentLink.",
                        "x-ms-visibility": "advanced",
                    },
                })),
            ],
            "responses": self.responses(obj(json!({
                "201": {
                    "description": "Subscribed (or subscribed again: the same id, its position kept). Location is the subscription, which the engine deletes to unsubscribe.",
                    "schema": {"$ref": "#/definitions/Subscription"},
                    "headers": {"Location": {"type": "string", "description": "The subscription's URL."}},
                },
            })), &[400, 403, 404, 408, 503]),
        })
    }

    fn list_subscriptions(&self) -> Value {
        json!({
            "operationId": "ListSubscriptions",
            "summary": "List webhook subscriptions",
            "description": "The folder's webhook subscriptions: their id, callback host, state (active, retrying, paused), position and how many files wait behind it. Never the callback URL.",
            "x-ms-visibility": "internal",
            "parameters": [{"$ref": "#/parameters/folder"}],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "The subscriptions.",
                    "schema": {
                        "type": "object",
                        "required": ["value"],
                        "properties": {"value": {"type": "array", "x-ms-summary": "Subscriptions", "description": "The subscriptions.", "items": {"$ref": "#/definitions/Subscription"}}},
                    },
                }
            })), &[403, 404, 503]),
        })
    }

    fn get_subscription(&self) -> Value {
        json!({
            "operationId": "GetSubscription",
            "summary": "Get a webhook subscription",
            "description": "One webhook subscription's state.",
            "x-ms-visibility": "internal",
            "parameters": [{"$ref": "#/parameters/folder"}, Self::id_parameter("Subscription")],
            "responses": self.responses(obj(json!({
                "200": {"description": "The subscription.", "schema": {"$ref": "#/definitions/Subscription"}}
            })), &[403, 404, 503]),
        })
    }

    fn unsubscribe(&self) -> Value {
        json!({
            "operationId": "DeleteSubscription",
            "summary": "Unsubscribe",
            "description": "Ends a webhook subscription (the engine calls it when the trigger or workflow is deleted). Succeeds also when it is already gone.",
            "x-ms-visibility": "internal",
            "parameters": [{"$ref": "#/parameters/folder"}, Self::id_parameter("Subscription")],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "Unsubscribed.",
                    "schema": {
                        "type": "object",
                        "required": ["id", "unsubscribed"],
                        "properties": {
                            "id": {"type": "string", "x-ms-summary": "Subscription id", "description": "The id."},
                            "unsubscribed": {"type": "boolean", "x-ms-summary": "Was subscribed", "description": "false: there was no such subscription (already gone)."},
                        },
                    },
                }
            })), &[403, 404, 503]),
        })
    }

    fn wait_webhook(&self) -> Value {
        json!({
            "operationId": "WaitForFileWebhook",
            "summary": "Wait for a file (webhook)",
            "description": "Registers a wait and returns at once; the daemon calls the workflow back when a file whose path matches the pattern arrives (found, with the file) or when the timeout passes (timedOut). The wait survives restarts of the daemon.",
            "x-ms-visibility": "advanced",
            "consumes": ["application/json"],
            "parameters": [
                {"$ref": "#/parameters/folder"},
                self.callback_body("Wait", json!({
                    "glob": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_PATH_CHARS,
                        "x-ms-summary": "File name pattern",
                        "description": "The glob the file's name (or, with a /, its relative path) must match, e.g. *.csv.",
                        "x-ms-visibility": "important",
                    },
                    "timeout": {
                        "type": "integer",
                        "format": "int64",
                        "minimum": 1,
                        "maximum": self.max_wait_s,
                        "default": DEFAULT_TIMEOUT_S.min(self.max_wait_s),
                        "x-ms-summary": "Timeout (seconds)",
                        "description": "How long to wait before the answer is timedOut.",
                        "x-ms-visibility": "advanced",
                    },
                    "content": {
                        "type": "string",
                        "enum": ["inline", "none"],
                        "default": "inline",
                        "x-ms-summary": "Include content",
                        "description": "inline: the found file's content comes in the callback; none: properties and a contentLink.",
                        "x-ms-visibility": "advanced",
                    },
                })),
            ],
            "responses": self.responses(obj(json!({
                "201": {
                    "description": "The wait is registered; Location cancels it (DELETE).",
                    "schema": {"$ref": "#/definitions/WaitRegistration"},
                    "headers": {"Location": {"type": "string", "description": "The wait's URL."}},
                },
            })), &[400, 403, 404, 408, 503]),
        })
    }

    fn cancel_wait_webhook(&self) -> Value {
        json!({
            "operationId": "CancelWaitWebhook",
            "summary": "Cancel a webhook wait",
            "description": "Cancels a wait registered by Wait for a file (webhook). Succeeds also when it already ended.",
            "x-ms-visibility": "internal",
            "parameters": [{"$ref": "#/parameters/folder"}, Self::id_parameter("Wait")],
            "responses": self.responses(obj(json!({
                "200": {
                    "description": "Cancelled.",
                    "schema": {
                        "type": "object",
                        "required": ["id", "cancelled"],
                        "properties": {
                            "id": {"type": "string", "x-ms-summary": "Wait id", "description": "The id."},
                            "cancelled": {"type": "boolean", "x-ms-summary": "Was waiting", "description": "false: there was no such wait (ended or cancelled before)."},
                        },
                    },
                }
            })), &[403, 404, 503]),
        })
    }

    fn get_openapi(&self) -> Value {
        json!({
            "operationId": "GetOpenApiDefinition",
            "summary": "Get the OpenAPI definition",
            "description": "This document: the daemon's operations as a Swagger 2.0 definition for the current configuration.",
            "x-ms-visibility": "internal",
            "parameters": [],
            "responses": self.responses(obj(json!({
                "200": {"description": "The Swagger 2.0 document.", "schema": {"type": "object"}}
            })), &[400]),
        })
    }
}

/// The object inside a `json!` literal (an empty map for anything else).
fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `Location` and `Retry-After` of the polling answers.
fn poll_headers() -> Value {
    json!({
        "Location": {"type": "string", "description": "The absolute URL to call next."},
        "Retry-After": {"type": "integer", "description": "Seconds to wait before calling Location (0: at once)."},
    })
}

/// The headers of `GetFileContent`'s `200` (and `206` with `Content-Range`).
fn content_headers(partial: bool) -> Value {
    let mut h = json!({
        "Content-Length": {"type": "integer", "description": "Bytes in this answer."},
        "ETag": {"type": "string", "description": "The version: \"<indexedAt>\"."},
        "Accept-Ranges": {"type": "string", "description": "bytes: ranges may be asked for."},
    });
    if partial {
        if let Some(o) = h.as_object_mut() {
            o.insert(
                "Content-Range".into(),
                json!({"type": "string", "description": "The range sent: bytes FIRST-LAST/SIZE."}),
            );
        }
    }
    h
}

/// The error answers, referenced as `#/responses/NAME`.
fn shared_responses() -> Value {
    let err = |description: &str| json!({"description": description, "schema": {"$ref": "#/definitions/Error"}});
    let mut unavailable =
        err("The index cannot be used right now; retry after Retry-After seconds.");
    if let Some(o) = unavailable.as_object_mut() {
        o.insert(
            "headers".into(),
            json!({"Retry-After": {"type": "integer", "description": "Seconds to wait before retrying."}}),
        );
    }
    let mut range = err("The range cannot be satisfied; Content-Range gives the size.");
    if let Some(o) = range.as_object_mut() {
        o.insert(
            "headers".into(),
            json!({"Content-Range": {"type": "string", "description": "bytes */SIZE"}}),
        );
    }
    json!({
        "BadRequest": err("A parameter is not valid; the message names it."),
        "Unauthorized": err("Credentials are missing or not accepted."),
        "Forbidden": err("This connection may not use the folder (folder_forbidden), or writing is off in the daemon (writing_disabled)."),
        "NotFound": err("No such folder (unknown_folder), file (file_not_found) or consumer (consumer_not_found)."),
        "Conflict": err("The file changed since that version (version_changed), or the destination exists (target_exists)."),
        "RangeNotSatisfiable": range,
        "UriTooLong": err("The request URL is too long."),
        "RequestTimeout": err("The request body did not arrive in time."),
        "Unavailable": unavailable,
    })
}

/// The file properties every file answer carries (`FileProperties`), with `extra` added
/// (the content fields of `File`).
fn file_properties(extra: Value) -> Value {
    let mut props = json!({
        "path": {"type": "string", "x-ms-summary": "File path", "description": "The path relative to the watched folder, /-separated (a name that is not UTF-8 is percent-escaped: see pathEncoding)."},
        "name": {"type": "string", "x-ms-summary": "File name", "description": "The file's name, without folders."},
        "size": {"type": "integer", "format": "int64", "x-ms-summary": "Size", "description": "Size in bytes."},
        "lastModified": {"type": "string", "format": "date-time", "x-ms-summary": "Last modified", "description": "The file's modification time."},
        "indexedAt": {"type": "string", "format": "date-time", "x-ms-summary": "Indexed at (version)", "description": "When the daemon saw this version complete: the version to name in Get file content, Move file and Delete file."},
        "contentType": {"type": "string", "x-ms-summary": "Content type", "description": "The media type guessed from the file name."},
        "stillOpen": {"type": "boolean", "x-ms-summary": "Still open", "description": "Present (true) only for a file offered while a writer still had it open.", "x-ms-visibility": "advanced"},
        "pathEncoding": {"type": "string", "enum": ["percent-escaped"], "x-ms-summary": "Path encoding", "description": "Present only when the name is not valid UTF-8.", "x-ms-visibility": "advanced"},
        "pathBytes": {"type": "string", "format": "byte", "x-ms-summary": "Path bytes", "description": "The path's raw bytes (base64), present only when the name is not valid UTF-8.", "x-ms-visibility": "advanced"},
    });
    if let (Some(p), Value::Object(extra)) = (props.as_object_mut(), extra) {
        p.extend(extra);
    }
    json!({
        "type": "object",
        "required": ["path", "name", "size", "lastModified", "indexedAt", "contentType"],
        "properties": props,
    })
}

fn definitions() -> Value {
    let mut file = file_properties(json!({
        "content": {
            "type": "object",
            "x-ms-summary": "File content",
            "description": "The content, in Logic Apps' form for binary data: hand it to any action that takes file content. Absent when the file is too large to inline (contentOmitted) or content=none.",
            "required": ["$content-type", "$content"],
            "properties": {
                "$content-type": {"type": "string", "x-ms-summary": "Content type", "description": "The media type."},
                "$content": {"type": "string", "format": "byte", "x-ms-summary": "Content (base64)", "description": "The bytes, base64."},
            },
        },
        "contentOmitted": {"type": "string", "x-ms-summary": "Content omitted", "description": "Why content is absent (e.g. larger than the daemon's limit): fetch it with Get file content."},
        "contentLink": {"type": "string", "x-ms-summary": "Content link", "description": "With content=none: the URL of Get file content for this version.", "x-ms-visibility": "advanced"},
    }));
    if let Some(o) = file.as_object_mut() {
        o.insert(
            "description".into(),
            json!("A file version the daemon offers."),
        );
    }
    let mut props = file_properties(json!({}));
    if let Some(o) = props.as_object_mut() {
        o.insert("description".into(), json!("A file version's properties."));
    }
    json!({
        "File": file,
        "FileProperties": props,
        "Folder": {
            "type": "object",
            "description": "A watched folder.",
            "required": ["name", "recursive"],
            "properties": {
                "name": {"type": "string", "x-ms-summary": "Folder name", "description": "Its name, used in the routes."},
                "recursive": {"type": "boolean", "x-ms-summary": "Includes subfolders", "description": "Whether files in subfolders are offered too."},
            },
        },
        "Consumer": {
            "type": "object",
            "description": "A named consumer of a folder's triggers.",
            "required": ["name", "position", "waiting"],
            "properties": {
                "name": {"type": "string", "x-ms-summary": "Consumer name", "description": "Its name (the triggers' consumer parameter)."},
                "position": {"type": "string", "format": "date-time", "x-ms-summary": "Position", "description": "Everything indexed up to here has been acknowledged; a first call without a cursor continues after it."},
                "waiting": {"type": "integer", "format": "int64", "x-ms-summary": "Files waiting", "description": "Index entries after the position (not checked against the disk), counted up to 100000."},
            },
        },
        "WaitResult": {
            "type": "object",
            "description": "The end of a wait.",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["found", "timedOut"], "x-ms-summary": "Status", "description": "found: a matching file arrived; timedOut: none did before the deadline."},
                "file": {"$ref": "#/definitions/File"},
                "since": {"type": "string", "format": "date-time", "x-ms-summary": "Waited since", "description": "With timedOut: the start of the wait."},
                "deadline": {"type": "string", "format": "date-time", "x-ms-summary": "Deadline", "description": "With timedOut: when the wait ended."},
            },
        },
        "Subscription": {
            "type": "object",
            "description": "A webhook subscription (never its callback URL).",
            "required": ["id", "host", "state", "position", "mode", "maxFileCount", "content"],
            "properties": {
                "id": {"type": "string", "x-ms-summary": "Subscription id", "description": "Its id."},
                "host": {"type": "string", "x-ms-summary": "Callback host", "description": "The host the daemon calls."},
                "state": {"type": "string", "enum": ["active", "retrying", "paused"], "x-ms-summary": "State", "description": "active; retrying: the last call failed; paused: calls failed longer than webhook.pause_after_s, until subscribed again."},
                "position": {"type": "string", "format": "date-time", "x-ms-summary": "Position", "description": "Every file indexed up to here has been delivered."},
                "lag": {"type": "integer", "format": "int64", "x-ms-summary": "Files waiting", "description": "Index entries after the position (counted up to 10,000; not filtered by glob)."},
                "mode": {"type": "string", "enum": ["single", "batch"], "x-ms-summary": "Mode", "description": "One File or an array per call."},
                "maxFileCount": {"type": "integer", "format": "int32", "x-ms-summary": "Maximum file count", "description": "Files per call in batch mode."},
                "content": {"type": "string", "enum": ["inline", "none"], "x-ms-summary": "Include content", "description": "Whether content comes inline."},
                "glob": {"type": "string", "x-ms-summary": "File name pattern", "description": "Only matching files are delivered."},
                "lastError": {"type": "string", "x-ms-summary": "Last error", "description": "Why the last call failed."},
                "failingSince": {"type": "string", "format": "date-time", "x-ms-summary": "Failing since", "description": "When calls began to fail."},
            },
        },
        "WaitRegistration": {
            "type": "object",
            "description": "A registered webhook wait.",
            "required": ["id", "host", "glob", "since", "deadline", "state"],
            "properties": {
                "id": {"type": "string", "x-ms-summary": "Wait id", "description": "Its id."},
                "host": {"type": "string", "x-ms-summary": "Callback host", "description": "The host the daemon calls."},
                "glob": {"type": "string", "x-ms-summary": "File name pattern", "description": "The pattern waited for."},
                "since": {"type": "string", "format": "date-time", "x-ms-summary": "Waiting since", "description": "Files indexed after this count."},
                "deadline": {"type": "string", "format": "date-time", "x-ms-summary": "Deadline", "description": "When the answer becomes timedOut."},
                "state": {"type": "string", "enum": ["waiting"], "x-ms-summary": "State", "description": "waiting."},
            },
        },
        "Error": {
            "type": "object",
            "description": "Why a request was refused.",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "x-ms-summary": "Error code", "description": "A stable code, e.g. file_not_found."},
                        "message": {"type": "string", "x-ms-summary": "Message", "description": "What went wrong, naming the parameter."},
                    },
                }
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(env: &[(&str, &str)]) -> Spec {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        Spec::new(&crate::config::load(None, env).unwrap())
    }

    #[test]
    fn the_wait_declares_every_parameter_its_location_carries() {
        let d = spec(&[]).document("http://h:1");
        let declared: Vec<&str> = d["paths"]["/watches/{folder}/wait"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in crate::routes::wait::STATE {
            assert!(
                declared.contains(name),
                "{name} is not declared: {declared:?}"
            );
        }
    }

    #[test]
    fn host_base_path_and_scheme_come_from_the_base_url() {
        let d = spec(&[]).document("https://gw.example:8443/ft");
        assert_eq!(d["host"], "gw.example:8443");
        assert_eq!(d["basePath"], "/ft");
        assert_eq!(d["schemes"], json!(["https"]));
        let d = spec(&[]).document("http://127.0.0.1:8080");
        assert_eq!(d["basePath"], "/");
    }

    #[test]
    fn security_follows_the_configured_methods() {
        let d = spec(&[]).document("http://h:1");
        assert_eq!(d["security"], json!([]));
        assert!(d["paths"]["/watches"]["get"]["responses"]["401"].is_null());
        let d = spec(&[
            ("FILETRIGGER__AUTH__BASIC_FILE", "/x"),
            ("FILETRIGGER__AUTH__API_KEY_FILE", "/y"),
            ("FILETRIGGER__AUTH__API_KEY_HEADER", "X-Key"),
        ])
        .document("http://h:1");
        assert_eq!(d["security"], json!([{"basic_auth": []}, {"api_key": []}]));
        assert_eq!(d["securityDefinitions"]["api_key"]["name"], "X-Key");
        assert_eq!(
            d["paths"]["/watches"]["get"]["responses"]["401"]["$ref"],
            "#/responses/Unauthorized"
        );
    }

    #[test]
    fn every_operation_has_an_id_a_summary_and_a_visibility() {
        let d = spec(&[]).document("http://h:1");
        let mut ids = Vec::new();
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method.starts_with("x-") {
                    continue;
                }
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}"));
                assert!(op["summary"].is_string(), "{id}");
                assert!(op["description"].is_string(), "{id}");
                assert!(op["x-ms-visibility"].is_string(), "{id}");
                assert!(
                    op["responses"]["200"].is_object() || op["responses"]["201"].is_object(),
                    "{id}"
                );
                if method == "get" {
                    assert!(op.get("consumes").is_none(), "{id}");
                }
                for p in op["parameters"].as_array().unwrap() {
                    let p = match p["$ref"].as_str() {
                        Some(r) => &d["parameters"][r.rsplit('/').next().unwrap()],
                        None => p,
                    };
                    let name = p["name"].as_str().unwrap();
                    assert!(p["x-ms-summary"].is_string(), "{id} {name}");
                    assert!(p["description"].is_string(), "{id} {name}");
                    if p["in"] == "path" {
                        assert_eq!(p["required"], true, "{id} {name}");
                        assert!(path.contains(&format!("{{{name}}}")), "{id} {name}");
                    }
                    if p["x-ms-visibility"] == "internal" && p["required"] == true {
                        assert!(!p["default"].is_null(), "{id} {name}: internal, required");
                    }
                }
                ids.push(id.to_string());
            }
        }
        ids.sort();
        assert_eq!(
            ids,
            [
                "CancelWaitWebhook",
                "DeleteConsumer",
                "DeleteFile",
                "DeleteSubscription",
                "GetFileContent",
                "GetFileProperties",
                "GetOpenApiDefinition",
                "GetSubscription",
                "ListConsumers",
                "ListFiles",
                "ListFolders",
                "ListSubscriptions",
                "MoveFile",
                "OnNewFile",
                "OnNewFileDefaultFolder",
                "OnNewFileWebhook",
                "OnNewFiles",
                "WaitForFile",
                "WaitForFileWebhook"
            ]
        );
    }
}
