//! Every command Hippo runs on a host, built as a pure value. Nothing in this module executes
//! anything: [`crate::ssh`] sends [`RemoteCommand::render`] to an SSH exec channel.
//!
//! Rules that keep user values (paths, release names, environment values) from ever being
//! interpreted by a shell:
//! - a builder's shell logic is a fixed `&'static str` script, run as
//!   `sh -c '<script>' sh <arg1> <arg2> ...`, and it refers to values only as `"$1"`, `"$2"`, ...;
//! - every value is a separate argument, quoted by [`shell_quote`];
//! - a hook's script text arrives on stdin and never becomes part of a command line.
//!
//! The rendered text is parsed by the remote user's login shell (sshd runs `$SHELL -c <text>`),
//! which must be a POSIX shell (sh, dash, bash, zsh, ksh); the scripts themselves always run
//! under `sh`. They use GNU coreutils options (`mv -T`, `ln -n`, `timeout -k`), i.e. Linux hosts.
//!
//! Exit codes carry meaning; each builder documents its own and the special ones are consts.

/// [`inspect_deploy_path`]: the deploy path exists but is not a symbolic link (a real
/// directory or file that Hippo must not replace). Also returned by [`switch_link`].
pub const DEPLOY_PATH_IS_NOT_A_LINK: i32 = 3;
/// [`inspect_deploy_path`]: nothing exists at the deploy path (first release).
pub const DEPLOY_PATH_ABSENT: i32 = 4;
/// [`version_exists`]: the version directory does not exist.
pub const VERSION_ABSENT: i32 = 1;
/// [`remove_versions`]: a name was empty, `.`, `..` or contained `/`; nothing was removed.
pub const REFUSED_VERSION_NAME: i32 = 2;
/// [`run_hook`]: the working directory does not exist or cannot be entered.
pub const HOOK_CANNOT_CD: i32 = 97;
/// [`run_hook`]: an environment variable name is not a valid shell identifier (`[A-Za-z_][A-Za-z0-9_]*`).
pub const HOOK_BAD_ENV_NAME: i32 = 96;
/// [`run_hook`]: the script could not be staged in a temporary file on the host (`mktemp`/disk full).
pub const HOOK_CANNOT_STAGE_SCRIPT: i32 = 98;
/// [`run_hook`]: the hook ran past its time limit and was stopped with SIGTERM (GNU `timeout`).
pub const HOOK_TIMED_OUT: i32 = 124;
/// [`run_hook`]: the hook ignored SIGTERM and was killed with SIGKILL 5 s later (128 + 9).
pub const HOOK_KILLED_AFTER_TIMEOUT: i32 = 137;

/// One command for a remote host: `sh -c '<fixed script>' sh <arg1> <arg2> ...` (the script sees
/// the arguments as `$1`, `$2`, ...), or a plain program with arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCommand {
    /// `Some` for `sh -c` scripts; the program is then `sh`.
    script: Option<&'static str>,
    program: String,
    args: Vec<String>,
    /// The command reads its input, then watches its stdin: the transport must keep it open
    /// (never send EOF) until the command exits. See [`run_hook`].
    holds_stdin: bool,
}

impl RemoteCommand {
    /// A plain program (looked up in the remote `PATH`), followed by [`RemoteCommand::arg`]s.
    pub fn program(p: &str) -> Self {
        Self {
            script: None,
            program: p.to_owned(),
            args: Vec::new(),
            holds_stdin: false,
        }
    }

    /// Appends one argument; it is always passed as exactly one word, whatever it contains.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// A fixed shell script, rendered as `sh -c '<script>' sh`; arguments added with
    /// [`RemoteCommand::arg`] are `$1`, `$2`, ... inside the script.
    pub fn script(fixed_script: &'static str) -> Self {
        Self {
            script: Some(fixed_script),
            program: "sh".to_owned(),
            args: Vec::new(),
            holds_stdin: false,
        }
    }

    /// True when the transport must keep the command's stdin open until it exits: closing it
    /// means "the worker is gone" (see [`run_hook`]).
    pub fn holds_stdin(&self) -> bool {
        self.holds_stdin
    }

    /// The exact text sent to the SSH exec channel.
    pub fn render(&self) -> String {
        let mut words: Vec<String> = Vec::with_capacity(self.args.len() + 4);
        words.push(shell_quote(&self.program));
        if let Some(script) = self.script {
            words.push("-c".to_owned());
            words.push(shell_quote(script));
            // $0 of the script.
            words.push("sh".to_owned());
        }
        words.extend(self.args.iter().map(|a| shell_quote(a)));
        words.join(" ")
    }
}

/// POSIX shell quoting: the result is one word whose value is exactly `s`.
///
/// Strings made only of `[A-Za-z0-9_./=:,+@%-]` stay bare, the empty string becomes `''`, and
/// everything else is wrapped in single quotes with each `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./=:,+@%-".contains(c);
    if s.is_empty() {
        return "''".to_owned();
    }
    if s.chars().all(safe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

const INSPECT_DEPLOY_PATH: &str = "if [ -L \"$1\" ]; then exec readlink -- \"$1\"; fi; \
if [ -e \"$1\" ]; then exit 3; fi; exit 4";

/// Looks at the deploy path (the symlink the web server serves).
///
/// Exit 0 and prints the link target (one line) if it is a symbolic link (even a dangling one);
/// [`DEPLOY_PATH_IS_NOT_A_LINK`] (3) if something else exists there; [`DEPLOY_PATH_ABSENT`] (4)
/// if nothing does.
pub fn inspect_deploy_path(deploy_path: &str) -> RemoteCommand {
    RemoteCommand::script(INSPECT_DEPLOY_PATH).arg(deploy_path)
}

const UNPACK_INTO_PARTIAL: &str =
    "rm -rf -- \"$1\" && mkdir -p -- \"$1\" && exec tar -xzpf - -C \"$1\"";

/// Empties and recreates `partial_dir`, then unpacks the tar.gz read from stdin into it, keeping
/// file modes. Exit 0 on success; any other code is a failure (tar's 2 = fatal error, e.g. a
/// truncated archive).
pub fn unpack_into_partial(partial_dir: &str) -> RemoteCommand {
    RemoteCommand::script(UNPACK_INTO_PARTIAL).arg(partial_dir)
}

const UNPACK_INTO: &str = "mkdir -p -- \"$1\" && exec tar -xzpf - -C \"$1\"";

/// Unpacks the tar.gz read from stdin into `dir` (made if absent; what is there stays unless an
/// entry replaces it), keeping file modes: a custom release's transfer into its version folder.
/// Exit 0 on success; any other code is a failure (tar's 2 = fatal error).
pub fn unpack_into(dir: &str) -> RemoteCommand {
    RemoteCommand::script(UNPACK_INTO).arg(dir)
}

const NEW_VERSION_DIR: &str = "rm -rf -- \"$1\" && exec mkdir -p -- \"$1\"";

/// Makes `version_dir` empty and new (a custom release's version folder, filled step by step).
/// The caller must not pass a folder a deploy link points to. Exit 0 on success.
pub fn new_version_dir(version_dir: &str) -> RemoteCommand {
    RemoteCommand::script(NEW_VERSION_DIR).arg(version_dir)
}

const WRITE_FILE: &str = "mkdir -p -- \"$(dirname -- \"$1\")\" && exec cat > \"$1\"";

/// Writes stdin to `path` (truncating it), creating the parent directory. Exit 0 on success.
pub fn write_file(path: &str) -> RemoteCommand {
    RemoteCommand::script(WRITE_FILE).arg(path)
}

const FINISH_VERSION: &str = "if [ -e \"$2\" ] || [ -L \"$2\" ]; then rm -rf -- \"$2\" || exit 1; fi; \
exec mv -T -- \"$1\" \"$2\"";

/// Renames the fully unpacked `partial_dir` to `version_dir` (one `rename(2)`, `mv -T`). If
/// `version_dir` already exists (a re-run of the same release) it is removed first, so the caller
/// must not finish a version that the deploy link currently points to. Exit 0 on success.
pub fn finish_version(partial_dir: &str, version_dir: &str) -> RemoteCommand {
    RemoteCommand::script(FINISH_VERSION)
        .arg(partial_dir)
        .arg(version_dir)
}

/// Exit 0 if `version_dir` is a directory, [`VERSION_ABSENT`] (1) otherwise.
pub fn version_exists(version_dir: &str) -> RemoteCommand {
    RemoteCommand::program("test").arg("-d").arg(version_dir)
}

const SWITCH_LINK: &str = "if [ -e \"$1\" ] && [ ! -L \"$1\" ]; then \
printf \"hippo: %s exists and is not a symbolic link\\n\" \"$1\" >&2; exit 3; fi; \
d=${1%/*}; [ -d \"${d:-/}\" ] || mkdir -p -- \"$d\" || exit 1; \
ln -sfn -- \"$2\" \"$3\" || exit 1; \
exec mv -Tf -- \"$3\" \"$1\"";

/// Points `deploy_path` at `target_dir` atomically: a new link is made at `tmp_link` (same
/// directory as the deploy path) and renamed over the old one, so the deploy path never stops
/// existing. Creates the deploy path's parent. Refuses with [`DEPLOY_PATH_IS_NOT_A_LINK`] (3) if
/// the deploy path exists and is not a symbolic link. Exit 0 on success, 1 on other failures.
pub fn switch_link(deploy_path: &str, target_dir: &str, tmp_link: &str) -> RemoteCommand {
    RemoteCommand::script(SWITCH_LINK)
        .arg(deploy_path)
        .arg(target_dir)
        .arg(tmp_link)
}

const LIST_VERSIONS: &str = "[ -d \"$1\" ] || exit 0; cd -- \"$1\" || exit 1; \
for d in *; do if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then printf \"%s\\n\" \"$d\"; fi; done; exit 0";

/// Prints the name of every version folder in `versions_dir`, one per line: real directories
/// only, no dot-folders (partial unpacks are `.partial-<name>`), nothing if `versions_dir` does
/// not exist. Exit 0 (1 only if the directory exists but cannot be entered).
pub fn list_versions(versions_dir: &str) -> RemoteCommand {
    RemoteCommand::script(LIST_VERSIONS).arg(versions_dir)
}

const REMOVE_VERSIONS: &str = "cd -- \"$1\" || exit 1; shift; \
for n in \"$@\"; do case $n in \"\"|.|..|*/*) \
printf \"hippo: refusing to remove %s\\n\" \"$n\" >&2; exit 2;; esac; done; \
[ \"$#\" -eq 0 ] && exit 0; exec rm -rf -- \"$@\"";

/// Removes the folders `names` (plain folder names, each its own argument) from `versions_dir`.
/// Exit 0 on success; 1 if `versions_dir` cannot be entered; [`REFUSED_VERSION_NAME`] (2) if a
/// name is empty, `.`, `..` or contains `/` (checked before anything is removed).
pub fn remove_versions(versions_dir: &str, names: &[String]) -> RemoteCommand {
    names.iter().fold(
        RemoteCommand::script(REMOVE_VERSIONS).arg(versions_dir),
        |c, n| c.arg(n.as_str()),
    )
}

const RUN_HOOK: &str = "cd -- \"$1\" || exit 97; t=$2; \
read -r a b || exit 98; \
case $a:$b in :*|*:|*[!0-9:]*) exit 98;; esac; \
d=$(mktemp -d \"${TMPDIR:-/tmp}/hippo-hook.XXXXXXXXXX\") || exit 98; \
trap 'rm -rf -- \"$d\"' EXIT; \
head -c \"$a\" > \"$d/env\" && head -c \"$b\" > \"$d/hook\" || exit 98; \
exec 3<&0; \
timeout -k 5 \"$t\" bash -e -c '\
while IFS= read -r -d \"\" __hippo_kv; do \
case ${__hippo_kv%%=*} in \"\"|[0-9]*|*[!A-Za-z0-9_]*) \
printf \"hippo: bad environment variable name %s\\n\" \"${__hippo_kv%%=*}\" >&2; exit 96;; esac; \
export -- \"$__hippo_kv\"; done < \"$1\"; unset __hippo_kv; rm -f -- \"$1\"; shift; . \"$0\"' \
\"$d/hook\" \"$d/env\" < /dev/null 3<&- & p=$!; \
{ cat <&3; kill -TERM \"-$p\" || kill -TERM \"$p\"; } > /dev/null 2>&1 & w=$!; \
exec 3<&-; \
wait \"$p\"; c=$?; kill \"$w\" 2> /dev/null; exit $c";

/// Runs a user hook in `workdir` for at most `timeout_secs` seconds (0 is treated as 1: never
/// "no limit"), stopping at the first failing command (`bash -e`). The script and its
/// variables arrive on **stdin** as [`hook_input`] builds them, never on a command line: they
/// are not limited by the argument size limit and not visible in `ps` (only in the hook's own
/// environment, `/proc/<pid>/environ`, readable by its user alone).
///
/// The wrapper stages both in a private temporary folder on the host (`mktemp -d`, removed
/// afterwards; the variables file as soon as they are read, so that a wrapper killed with
/// SIGKILL, whose EXIT trap cannot run, leaves no values behind), runs the hook with stdin from `/dev/null` (a command in the hook that reads
/// stdin cannot swallow anything), and then **watches its own stdin**: the transport keeps
/// it open while the hook runs ([`RemoteCommand::holds_stdin`]), so end-of-file means the
/// SSH channel is gone (the worker died or cut the connection). The hook is then stopped like
/// at its time limit: SIGTERM to its process group (GNU `timeout` leads one), SIGKILL 5 s
/// later. sshd does not do this by itself: without a terminal, a command whose channel closes
/// keeps running.
///
/// Exit codes: the script's own status, or [`HOOK_CANNOT_CD`] (97), [`HOOK_BAD_ENV_NAME`] (96),
/// [`HOOK_CANNOT_STAGE_SCRIPT`] (98: bad input framing, `mktemp`, disk full),
/// [`HOOK_TIMED_OUT`] (124), [`HOOK_KILLED_AFTER_TIMEOUT`] (137); 125–127 mean
/// `timeout`/`bash` itself failed or is missing.
pub fn run_hook(workdir: &str, timeout_secs: u64) -> RemoteCommand {
    let mut c = RemoteCommand::script(RUN_HOOK)
        .arg(workdir)
        .arg(timeout_secs.max(1).to_string());
    c.holds_stdin = true;
    c
}

/// A variable that cannot be passed to a hook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable {name:?} cannot be passed to a hook: {why}")]
pub struct BadVariable {
    pub name: String,
    pub why: &'static str,
}

/// What [`run_hook`] reads on stdin: one line `<variables bytes> <script bytes>`, then the
/// variables as `NAME=value` entries each ended by a NUL byte (values may hold newlines), then
/// the script. Names must be shell identifiers (`[A-Za-z_][A-Za-z0-9_]*`); no NUL anywhere in
/// a variable.
pub fn hook_input(env: &[(String, String)], script: &str) -> Result<Vec<u8>, BadVariable> {
    let mut vars = Vec::new();
    for (k, v) in env {
        let bad = |why| BadVariable {
            name: k.clone(),
            why,
        };
        let mut chars = k.chars();
        let ident = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            return Err(bad("the name is not a shell identifier"));
        }
        if v.contains('\0') {
            return Err(bad("the value contains a NUL byte"));
        }
        vars.extend_from_slice(k.as_bytes());
        vars.push(b'=');
        vars.extend_from_slice(v.as_bytes());
        vars.push(0);
    }
    let mut out = format!("{} {}\n", vars.len(), script.len()).into_bytes();
    out.extend_from_slice(&vars);
    out.extend_from_slice(script.as_bytes());
    Ok(out)
}

/// The remote user's name (`id -un`), one line.
pub fn whoami() -> RemoteCommand {
    RemoteCommand::program("id").arg("-un")
}

const CHECK_WRITABLE: &str = "for p in \"$@\"; do q=$p; \
while [ ! -e \"$q\" ] && [ ! -L \"$q\" ] && [ \"$q\" != / ]; do q=$(dirname -- \"$q\"); done; \
if [ -d \"$q\" ] && [ -w \"$q\" ]; then echo yes; else echo no; fi; done";

/// For each of `dirs`, one line `yes` or `no`: whether the user can create things there, i.e.
/// whether the directory (or, when it does not exist yet, its nearest existing ancestor, which
/// Hippo's `mkdir -p` would start from) is a writable directory. Exit 0.
pub fn check_writable(dirs: &[String]) -> RemoteCommand {
    dirs.iter()
        .fold(RemoteCommand::script(CHECK_WRITABLE), |c, d| {
            c.arg(d.as_str())
        })
}

/// [`install_authorized_key`] prints this when the key was already there (nothing written).
pub const KEY_ALREADY_PRESENT: &str = "present";
/// [`install_authorized_key`] prints this after appending the key.
pub const KEY_ADDED: &str = "added";

const INSTALL_AUTHORIZED_KEY: &str = "umask 077; d=\"$HOME/.ssh\"; f=\"$d/authorized_keys\"; \
mkdir -p -- \"$d\" && chmod 700 -- \"$d\" || exit 1; \
if [ -f \"$f\" ] && grep -qF -- \"$2\" \"$f\"; then echo present; exit 0; fi; \
if [ -s \"$f\" ] && [ -n \"$(tail -c 1 -- \"$f\")\" ]; then printf \"\\n\" >> \"$f\" || exit 1; fi; \
printf \"%s\\n\" \"$1\" >> \"$f\" && chmod 600 -- \"$f\" && echo added";

/// Appends the public key line `key_line` to the login user's `~/.ssh/authorized_keys`, unless
/// a line there already holds its key blob `key_base64` (then prints [`KEY_ALREADY_PRESENT`]):
/// creates `~/.ssh` (0700) and the file (0600) as needed, and starts a new line first when the
/// file does not end with one. Prints [`KEY_ADDED`] after appending. Exit 0 on success.
pub fn install_authorized_key(key_line: &str, key_base64: &str) -> RemoteCommand {
    RemoteCommand::script(INSTALL_AUTHORIZED_KEY)
        .arg(key_line)
        .arg(key_base64)
}

// ---------------------------------------------------------------------------------------------
// A release's work on a host in as few commands as possible (issue 11): every command below
// starts the user's shell once (with its rc files) and costs a round trip, so a phase on a host
// is one command: probe (what is there), receive (unpack, manifest, rename), clean up.

/// How an archive sent to a host is compressed. zstd only when the host has it ([`probe_host`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Gzip,
    Zstd,
}

impl Codec {
    /// The word the receiving scripts take (`gzip` / `zstd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// [`receive_version`]: the framing line of stdin was missing or not a number.
pub const RECEIVE_BAD_INPUT: i32 = 98;

const PROBE_HOST: &str = "if [ -L \"$1\" ]; then t=$(readlink -- \"$1\") || exit 1; \
printf \"link %s\\n\" \"$t\"; elif [ -e \"$1\" ]; then exit 3; else t=; echo nolink; fi; \
if zstd -V > /dev/null 2>&1; then echo zstd; fi; \
if [ -n \"$3\" ] && [ -d \"$2/$3\" ]; then echo present; fi; \
m=\"$2/.${t##*/}.hippo.json\"; \
if [ -n \"$t\" ] && [ -f \"$m\" ]; then printf \"base \"; sha256sum < \"$m\"; fi; \
exit 0";

/// One look at a host before anything is sent (the first command on a connection): the deploy
/// link, whether `zstd` is installed, whether `version` (may be empty) is already in
/// `versions_dir`, and the sha256 of the manifest beside the live version. Prints
/// `link <target>` or `nolink`, then `zstd` if `zstd -V` runs, `present` if the
/// version folder exists, `base <sha256>` if `<versions_dir>/.<live name>.hippo.json` exists.
/// Exit 0; [`DEPLOY_PATH_IS_NOT_A_LINK`] (3) if the deploy path exists and is not a link.
/// [`ProbeReport::parse`] reads the output.
pub fn probe_host(deploy_path: &str, versions_dir: &str, version: &str) -> RemoteCommand {
    RemoteCommand::script(PROBE_HOST)
        .arg(deploy_path)
        .arg(versions_dir)
        .arg(version)
}

/// What [`probe_host`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeReport {
    /// The deploy link's target (`None`: no link yet).
    pub link: Option<String>,
    pub zstd: bool,
    /// The version asked about is already there.
    pub present: bool,
    /// sha256 (hex) of the live version's manifest file.
    pub base_manifest: Option<String>,
}

impl ProbeReport {
    pub fn parse(lines: &[String]) -> ProbeReport {
        let mut r = ProbeReport::default();
        for l in lines {
            if let Some(t) = l.strip_prefix("link ") {
                r.link = Some(t.to_owned());
            } else if l == "zstd" {
                r.zstd = true;
            } else if l == "present" {
                r.present = true;
            } else if let Some(h) = l.strip_prefix("base ") {
                // `sha256sum` prints `<hash>  -`; nothing when it failed.
                r.base_manifest = h.split_whitespace().next().map(str::to_owned);
            }
        }
        r
    }

    /// The best codec the host can unpack.
    pub fn codec(&self) -> Codec {
        if self.zstd { Codec::Zstd } else { Codec::Gzip }
    }
}

const RECEIVE_VERSION: &str = "p=\"$1/.partial-$2\"; m=\"$p.hippo.json\"; \
read -r n || exit 98; case $n in \"\"|*[!0-9]*) exit 98;; esac; \
rm -rf -- \"$p\" && mkdir -p -- \"$p\" || exit 1; \
if [ \"$n\" -gt 0 ]; then head -c \"$n\" > \"$m\" || exit 1; fi; \
if [ \"$3\" = zstd ]; then tar -x -I zstd -pf - -C \"$p\"; else tar -xzpf - -C \"$p\"; fi; \
c=$?; [ \"$c\" -eq 0 ] || exit \"$c\"; \
v=\"$1/$2\"; if [ -e \"$v\" ] || [ -L \"$v\" ]; then rm -rf -- \"$v\" || exit 1; fi; \
mv -T -- \"$p\" \"$v\" || exit 1; \
if [ \"$n\" -gt 0 ]; then exec mv -f -- \"$m\" \"$1/.$2.hippo.json\"; fi; exit 0";

/// Receives a whole version in one command: stdin is [`receive_input`]'s framing line, the
/// manifest (may be empty), then the archive (`codec`). Unpacks into
/// `<versions_dir>/.partial-<version>` (emptied first), keeping modes, then renames it to
/// `<versions_dir>/<version>` (replacing a folder of that name: never call it for the live
/// version) and the manifest to `<versions_dir>/.<version>.hippo.json`. A version folder is
/// never half-unpacked. Exit 0; [`RECEIVE_BAD_INPUT`] (98); tar's code (2: a broken archive);
/// 1 for other failures.
pub fn receive_version(versions_dir: &str, version: &str, codec: Codec) -> RemoteCommand {
    RemoteCommand::script(RECEIVE_VERSION)
        .arg(versions_dir)
        .arg(version)
        .arg(codec.as_str())
}

/// The framing line [`receive_version`] reads before the manifest: its length in bytes.
pub fn receive_input(manifest: &[u8]) -> Vec<u8> {
    format!("{}\n", manifest.len()).into_bytes()
}

/// [`receive_delta`]: the base version folder is not on the host (nothing was changed).
pub const DELTA_NO_BASE: i32 = 5;
/// [`receive_delta`]: the base was incomplete or changed, or the result did not match the
/// expected listing; the partial folder was removed. Send the full archive instead.
pub const DELTA_MISMATCH: i32 = 6;

const RECEIVE_DELTA: &str = "p=\"$1/.partial-$2\"; m=\"$p.hippo.json\"; x=\"$p.drop\"; \
b=\"$1/$4\"; r=\"$1/.next-$4\"; \
read -r n l d || exit 98; case $n:$l:$d in :*|*::*|*:|*[!0-9:]*) exit 98;; esac; \
[ -d \"$b\" ] || exit 5; \
if [ -e \"$p\" ] || [ -L \"$p\" ]; then rm -rf -- \"$p\" || exit 1; fi; \
head -c \"$n\" | gzip -dc > \"$m\" || exit 1; \
if [ \"$5\" != copy ] && [ -d \"$r\" ] && mv -T -- \"$r\" \"$p\" 2> /dev/null; then \
head -c \"$l\" > /dev/null && head -c \"$d\" | gzip -dc > \"$x\" && cd -- \"$p\" || exit 1; \
if ! xargs -0 -r rm -rf -- < \"$x\"; then cd / && rm -rf -- \"$p\" \"$m\" \"$x\"; exit 6; fi; \
else x=\"$p.keep\"; head -c \"$l\" | gzip -dc > \"$x\" && head -c \"$d\" > /dev/null || exit 1; \
mkdir -p -- \"$p\" && cd -- \"$p\" || exit 1; if [ \"$5\" = copy ]; then o=-p; else o=-l; fi; \
if ! (cd -- \"$b\" && exec xargs -0 -r cp -P $o --parents -t \"$p\" -- < \"$x\"); then \
cd / && rm -rf -- \"$p\" \"$m\" \"$x\"; exit 6; fi; fi; rm -f -- \"$x\"; \
if [ \"$3\" = zstd ]; then tar -x -I zstd -pf -; else tar -xzpf -; fi; \
c=$?; [ \"$c\" -eq 0 ] || exit \"$c\"; \
s=$(find . -mindepth 1 \\( -type f -printf \"f %m %s %T@ %p\\0\" \\) \
-o \\( -type d -printf \"d %m %p\\0\" \\) -o \\( -type l -printf \"l %p %l\\0\" \\) \
-o -printf \"? %p\\0\" | LC_ALL=C sort -z | sha256sum); cd / || exit 1; \
if [ \"${s%% *}\" != \"$6\" ]; then rm -rf -- \"$p\" \"$m\"; exit 6; fi; \
v=\"$1/$2\"; if [ -e \"$v\" ] || [ -L \"$v\" ]; then rm -rf -- \"$v\" || exit 1; fi; \
mv -T -- \"$p\" \"$v\" || exit 1; exec mv -f -- \"$m\" \"$1/.$2.hippo.json\"";

/// Receives a version as a delta from the version `base` (a folder of `versions_dir`, normally
/// the live one) in one command. Stdin: [`delta_input`]'s framing line, the manifest, the
/// keep list (NUL-ended paths of regular files to take from the base) and the drop list
/// (NUL-ended paths of the base not taken as they are), each gzip-compressed (2,000 paths and
/// hashes are ~400 KB plain), then the delta archive (`codec`).
///
/// The new folder `<versions_dir>/.partial-<version>` (emptied first) starts as one of:
/// - the base's **spare** `<versions_dir>/.next-<base>` when it is there and `link_mode` is not
///   `copy`: hard links to every regular file of the base's manifest, made on the host after
///   the release that made the base live ([`clean_versions`]); the drop list's paths are removed
///   from it (files changed or gone, directories gone). The spare is used up (renamed);
/// - otherwise the keep list's files, hard-linked from the base (`cp -l`) or, with `copy`,
///   copied keeping mode and times (`cp -p`).
///
/// Then the archive is unpacked (directories, symlinks, new and changed files: each a new
/// file, never written through a link). The folder is then listed (`find -printf`, see
/// `delta::listing`) and the listing's sha256 must equal `listing_sha256`; only then is it
/// renamed into place with its manifest, as in [`receive_version`].
///
/// Exit 0; [`DELTA_NO_BASE`] (5) before reading the input, [`DELTA_MISMATCH`] (6) after
/// removing what it made (both: send the full archive instead); [`RECEIVE_BAD_INPUT`] (98);
/// tar's code; 1 for other failures.
pub fn receive_delta(
    versions_dir: &str,
    version: &str,
    codec: Codec,
    base: &str,
    link_mode: &str,
    listing_sha256: &str,
) -> RemoteCommand {
    RemoteCommand::script(RECEIVE_DELTA)
        .arg(versions_dir)
        .arg(version)
        .arg(codec.as_str())
        .arg(base)
        .arg(link_mode)
        .arg(listing_sha256)
}

/// The framing line [`receive_delta`] reads: the (compressed) manifest's, keep list's and drop
/// list's lengths.
pub fn delta_input(manifest: &[u8], keep_list: &[u8], drop_list: &[u8]) -> Vec<u8> {
    format!(
        "{} {} {}\n",
        manifest.len(),
        keep_list.len(),
        drop_list.len()
    )
    .into_bytes()
}

const CLEAN_VERSIONS: &str = "export LC_ALL=C; [ -d \"$1\" ] || exit 0; cd -- \"$1\" || exit 1; \
k=$2; s=$3; shift 3; [ \"$k\" -ge 1 ] 2> /dev/null || k=1; l=; \
if [ -n \"$s\" ] && [ -d \"$s\" ] && [ ! -L \"$s\" ] && read -r n; then case $n in \"\"|*[!0-9]*) ;; *) \
l=\".next-$s.list.$$\"; head -c \"$n\" | gzip -dc > \"$l\" 2> /dev/null || { rm -f -- \"$l\"; l=; };; esac; fi; \
n=0; for d in *; do if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then n=$((n+1)); fi; done; i=0; \
for d in *; do [ -d \"$d\" ] && [ ! -L \"$d\" ] || continue; i=$((i+1)); \
[ \"$i\" -le $((n-k)) ] || break; \
for p in \"$@\"; do [ \"$d\" = \"$p\" ] && continue 2; done; \
rm -f -- \".$d.hippo.json\" || exit 1; \
mv -T -- \"$d\" \".hippo-gone-$d\" 2> /dev/null || rm -rf -- \"$d\" || exit 1; printf \"%s\\n\" \"$d\"; done; \
B='sleep 1; for x in .next-*; do [ -e \"$x\" ] || continue; \
if [ -z \"$1\" ] || { [ \"$x\" != \".next-$1\" ] && [ \"$x\" != \"$2\" ]; }; then rm -rf -- \"$x\"; fi; done; \
if [ -n \"$2\" ]; then if [ -e \".next-$1\" ] || ! mkdir -- \"$3\" \
|| ! (cd -- \"$1\" && exec xargs -0 -r cp -P -l --parents -t \"../$3\" --) < \"$2\" \
|| ! mv -T -- \"$3\" \".next-$1\" 2> /dev/null; then rm -rf -- \"$3\"; fi; rm -f -- \"$2\"; fi; \
for g in .hippo-gone-*; do [ -d \"$g\" ] && rm -rf -- \"$g\"; done'; \
( trap \"\" HUP; exec nice -n 19 sh -c \"$B\" sh \"$s\" \"$l\" \".next-$s.tmp.$$\" ) \
< /dev/null > /dev/null 2>&1 & exit 0";

/// Cleanup in one command: keeps the `keep` newest version folders of `versions_dir` (names
/// sort by time, compared bytewise) and every folder named in `protect`; takes the others out
/// of the way at once (renamed to `.hippo-gone-<name>`, their manifests removed) and prints
/// each one's name on a line. The same rule as [`crate::cleanup::to_remove`]. Dot-folders
/// (partial unpacks, spares) are not versions.
///
/// The slow part runs on the host a second after the command has answered (when the rest of
/// the release — other hosts' cleanup, the final event — is normally over), in a shell at the
/// lowest CPU priority (`nice -n 19`), detached from the channel: the renamed folders are deleted, spares other
/// than `spare`'s are removed, and when `spare` (a version folder, normally the one just made
/// live) is not empty and stdin carries [`clean_input`] (the gzip-compressed, NUL-ended list
/// of that version's regular files, from its manifest), the spare `.next-<spare>` is made:
/// a hard link to each of those files, for the next release's delta ([`receive_delta`]). It is
/// made in `.next-<spare>.tmp.<pid>` and renamed when complete, so a half-made spare is never
/// used. No `spare`: every spare goes (the live version changed to one Hippo has no list of).
///
/// Exit 0 (nothing to do when the folder does not exist); 1 if it cannot be entered or a
/// folder can be neither renamed nor removed.
pub fn clean_versions(
    versions_dir: &str,
    keep: usize,
    spare: &str,
    protect: &[&str],
) -> RemoteCommand {
    protect.iter().fold(
        RemoteCommand::script(CLEAN_VERSIONS)
            .arg(versions_dir)
            .arg(keep.to_string())
            .arg(spare),
        |c, p| c.arg(*p),
    )
}

/// What [`clean_versions`] reads on stdin when it makes a spare: a line with the length of the
/// gzip-compressed NUL-ended file list, then the list.
pub fn clean_input(files_gz: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", files_gz.len()).into_bytes();
    out.extend_from_slice(files_gz);
    out
}

/// Prints a file (a base manifest, when the worker has not seen it in this run). Exit 1 if
/// it cannot be read.
pub fn read_file(path: &str) -> RemoteCommand {
    RemoteCommand::program("cat").arg("--").arg(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};

    const PWNED: &str = "$(touch /tmp/pwned)";
    const AWKWARD: &str = "/srv/it's a dir/ü";

    fn q(script: &str) -> String {
        shell_quote(script)
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            shell_quote("/srv/app-1.2_x/a=b:c,d+e@f%g"),
            "/srv/app-1.2_x/a=b:c,d+e@f%g"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(PWNED), "'$(touch /tmp/pwned)'");
        assert_eq!(
            shell_quote("`id`;|&<>*?~#!\"\\\n"),
            "'`id`;|&<>*?~#!\"\\\n'"
        );
        assert_eq!(shell_quote("ü"), "'ü'");
        assert_eq!(shell_quote("-rf"), "-rf");
    }

    #[test]
    fn plain_program_render() {
        let c = RemoteCommand::program("echo").arg("a b").arg("").arg(PWNED);
        assert_eq!(c.render(), "echo 'a b' '' '$(touch /tmp/pwned)'");
    }

    #[test]
    fn inspect_deploy_path_render() {
        assert_eq!(
            inspect_deploy_path("/srv/www/current").render(),
            "sh -c 'if [ -L \"$1\" ]; then exec readlink -- \"$1\"; fi; if [ -e \"$1\" ]; then exit 3; fi; exit 4' sh /srv/www/current"
        );
        assert_eq!(
            inspect_deploy_path(AWKWARD).render(),
            format!(
                "sh -c {} sh '/srv/it'\\''s a dir/ü'",
                q(INSPECT_DEPLOY_PATH)
            )
        );
    }

    #[test]
    fn unpack_into_partial_render() {
        assert_eq!(
            unpack_into_partial("/srv/app/versions/.partial-r1").render(),
            "sh -c 'rm -rf -- \"$1\" && mkdir -p -- \"$1\" && exec tar -xzpf - -C \"$1\"' sh /srv/app/versions/.partial-r1"
        );
        assert_eq!(
            unpack_into_partial(&format!("/srv/{PWNED}")).render(),
            format!(
                "sh -c {} sh '/srv/$(touch /tmp/pwned)'",
                q(UNPACK_INTO_PARTIAL)
            )
        );
    }

    #[test]
    fn unpack_into_render() {
        assert_eq!(
            unpack_into("/srv/hippo/versions/v1").render(),
            "sh -c 'mkdir -p -- \"$1\" && exec tar -xzpf - -C \"$1\"' sh /srv/hippo/versions/v1"
        );
        assert_eq!(
            unpack_into(AWKWARD).render(),
            format!("sh -c {} sh '/srv/it'\\''s a dir/ü'", q(UNPACK_INTO))
        );
    }

    #[test]
    fn new_version_dir_render() {
        assert_eq!(
            new_version_dir("/srv/hippo/versions/v 1").render(),
            "sh -c 'rm -rf -- \"$1\" && exec mkdir -p -- \"$1\"' sh '/srv/hippo/versions/v 1'"
        );
        assert_eq!(
            new_version_dir(&format!("/srv/{PWNED}")).render(),
            format!("sh -c {} sh '/srv/$(touch /tmp/pwned)'", q(NEW_VERSION_DIR))
        );
    }

    #[test]
    fn write_file_render() {
        assert_eq!(
            write_file("/srv/app/shared/.env").render(),
            "sh -c 'mkdir -p -- \"$(dirname -- \"$1\")\" && exec cat > \"$1\"' sh /srv/app/shared/.env"
        );
    }

    #[test]
    fn finish_version_render() {
        assert_eq!(
            finish_version("/srv/v/.partial-r 1", "/srv/v/r 1").render(),
            "sh -c 'if [ -e \"$2\" ] || [ -L \"$2\" ]; then rm -rf -- \"$2\" || exit 1; fi; exec mv -T -- \"$1\" \"$2\"' sh '/srv/v/.partial-r 1' '/srv/v/r 1'"
        );
    }

    #[test]
    fn version_exists_render() {
        assert_eq!(version_exists("/srv/v/r1").render(), "test -d /srv/v/r1");
        assert_eq!(
            version_exists(AWKWARD).render(),
            "test -d '/srv/it'\\''s a dir/ü'"
        );
    }

    #[test]
    fn switch_link_render() {
        assert_eq!(
            switch_link("/srv/www/current", "/srv/v/r1", "/srv/www/.current.tmp").render(),
            "sh -c 'if [ -e \"$1\" ] && [ ! -L \"$1\" ]; then printf \"hippo: %s exists and is not a symbolic link\\n\" \"$1\" >&2; exit 3; fi; d=${1%/*}; [ -d \"${d:-/}\" ] || mkdir -p -- \"$d\" || exit 1; ln -sfn -- \"$2\" \"$3\" || exit 1; exec mv -Tf -- \"$3\" \"$1\"' sh /srv/www/current /srv/v/r1 /srv/www/.current.tmp"
        );
    }

    #[test]
    fn list_versions_render() {
        assert_eq!(
            list_versions("/srv/v").render(),
            "sh -c '[ -d \"$1\" ] || exit 0; cd -- \"$1\" || exit 1; for d in *; do if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then printf \"%s\\n\" \"$d\"; fi; done; exit 0' sh /srv/v"
        );
    }

    #[test]
    fn remove_versions_render() {
        let names = vec!["r1".to_owned(), "r 2".to_owned(), PWNED.to_owned()];
        assert_eq!(
            remove_versions("/srv/v", &names).render(),
            "sh -c 'cd -- \"$1\" || exit 1; shift; for n in \"$@\"; do case $n in \"\"|.|..|*/*) printf \"hippo: refusing to remove %s\\n\" \"$n\" >&2; exit 2;; esac; done; [ \"$#\" -eq 0 ] && exit 0; exec rm -rf -- \"$@\"' sh /srv/v r1 'r 2' '$(touch /tmp/pwned)'"
        );
    }

    /// `run_hook("/srv/v/r1", 600)`, as sent to the host.
    const RUN_HOOK_RENDERED: &str = "sh -c 'cd -- \"$1\" || exit 97; t=$2; read -r a b || exit 98; case $a:$b in :*|*:|*[!0-9:]*) exit 98;; esac; d=$(mktemp -d \"${TMPDIR:-/tmp}/hippo-hook.XXXXXXXXXX\") || exit 98; trap '\\''rm -rf -- \"$d\"'\\'' EXIT; head -c \"$a\" > \"$d/env\" && head -c \"$b\" > \"$d/hook\" || exit 98; exec 3<&0; timeout -k 5 \"$t\" bash -e -c '\\''while IFS= read -r -d \"\" __hippo_kv; do case ${__hippo_kv%%=*} in \"\"|[0-9]*|*[!A-Za-z0-9_]*) printf \"hippo: bad environment variable name %s\\n\" \"${__hippo_kv%%=*}\" >&2; exit 96;; esac; export -- \"$__hippo_kv\"; done < \"$1\"; unset __hippo_kv; rm -f -- \"$1\"; shift; . \"$0\"'\\'' \"$d/hook\" \"$d/env\" < /dev/null 3<&- & p=$!; { cat <&3; kill -TERM \"-$p\" || kill -TERM \"$p\"; } > /dev/null 2>&1 & w=$!; exec 3<&-; wait \"$p\"; c=$?; kill \"$w\" 2> /dev/null; exit $c' sh /srv/v/r1 600";

    #[test]
    fn run_hook_render() {
        let c = run_hook("/srv/v/r1", 600);
        assert!(c.holds_stdin());
        assert_eq!(c.render(), RUN_HOOK_RENDERED);
        assert!(run_hook("/w", 0).render().ends_with(" sh /w 1"));
        assert!(!inspect_deploy_path("/w").holds_stdin());
    }

    #[test]
    fn hook_input_frames_variables_and_script() {
        let env = vec![
            ("RELEASE".to_owned(), "r1".to_owned()),
            ("MSG".to_owned(), format!("it's {PWNED}\nü")),
        ];
        assert_eq!(
            hook_input(&env, "echo hi\n").expect("input"),
            format!("43 8\nRELEASE=r1\0MSG=it's {PWNED}\nü\0echo hi\n").into_bytes()
        );
        assert_eq!(hook_input(&[], "").expect("input"), b"0 0\n".to_vec());
        for bad in ["", "1A", "A-B", "A=B", "Ü"] {
            let err = hook_input(&[(bad.to_owned(), "x".to_owned())], "").expect_err(bad);
            assert_eq!(err.why, "the name is not a shell identifier");
        }
        let err = hook_input(&[("A".to_owned(), "x\0y".to_owned())], "").expect_err("nul");
        assert_eq!(
            err.to_string(),
            "variable \"A\" cannot be passed to a hook: the value contains a NUL byte"
        );
    }

    /// Runs `rendered` the way sshd does (`sh -c <text>`), feeding `stdin`.
    fn sh(rendered: &str, stdin: &[u8]) -> (i32, String, String) {
        use std::io::Write;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(rendered)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let mut input = child.stdin.take().expect("stdin");
        // A command that does not read stdin may exit first: ignore EPIPE.
        let _ = input.write_all(stdin);
        drop(input);
        let out = child.wait_with_output().expect("wait sh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command that holds its stdin ([`RemoteCommand::holds_stdin`]) the way the
    /// transport does: writes `stdin`, keeps it open until the command exits (at most 30 s).
    fn sh_held(rendered: &str, stdin: &[u8]) -> (i32, String, String) {
        use std::io::{Read, Write};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(rendered)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let mut input = child.stdin.take().expect("stdin");
        let read = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = read(Box::new(child.stdout.take().expect("stdout")));
        let err = read(Box::new(child.stderr.take().expect("stderr")));
        let _ = input.write_all(stdin);
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "hook hangs"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        drop(input);
        (
            status.code().unwrap_or(-1),
            out.join().expect("stdout"),
            err.join().expect("stderr"),
        )
    }

    fn tar_gz_of(dir: &Path) -> Vec<u8> {
        let out = Command::new("tar")
            .arg("-czf")
            .arg("-")
            .arg("-C")
            .arg(dir)
            .arg(".")
            .output()
            .expect("tar");
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn rendered_commands_run_locally() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().join("it's a \"dir\" ü $(touch pwned)");
        let b = |p: &str| format!("{}/{p}", base.display());
        let pwned_marker = std::env::current_dir().expect("cwd").join("pwned");

        // Absent deploy path, then a real directory at it.
        assert_eq!(
            sh(&inspect_deploy_path(&b("www/current")).render(), b"").0,
            DEPLOY_PATH_ABSENT
        );
        std::fs::create_dir_all(b("www/current")).expect("mkdir");
        assert_eq!(
            sh(&inspect_deploy_path(&b("www/current")).render(), b"").0,
            DEPLOY_PATH_IS_NOT_A_LINK
        );
        let (code, _, err) = sh(
            &switch_link(&b("www/current"), &b("v/r1"), &b("www/.tmp")).render(),
            b"",
        );
        assert_eq!(code, DEPLOY_PATH_IS_NOT_A_LINK);
        assert!(err.contains("not a symbolic link"), "{err}");
        std::fs::remove_dir(b("www/current")).expect("rmdir");

        // Unpack an archive from stdin into a partial dir (stale content is removed first).
        let src = tempfile::tempdir().expect("tempdir");
        std::fs::write(src.path().join("index.html"), "hello ü\n").expect("write");
        std::fs::create_dir(src.path().join("bin")).expect("mkdir");
        std::fs::write(src.path().join("bin/run.sh"), "#!/bin/sh\n").expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                src.path().join("bin/run.sh"),
                std::fs::Permissions::from_mode(0o755),
            )
            .expect("chmod");
        }
        let archive = tar_gz_of(src.path());
        for r in ["r1", "r2"] {
            let partial = b(&format!("v/.partial-{r}"));
            std::fs::create_dir_all(&partial).expect("mkdir");
            std::fs::write(format!("{partial}/stale"), "x").expect("write");
            let (code, _, err) = sh(&unpack_into_partial(&partial).render(), &archive);
            assert_eq!(code, 0, "{err}");
            assert!(!Path::new(&format!("{partial}/stale")).exists());
            assert_eq!(
                std::fs::read_to_string(format!("{partial}/index.html")).expect("read"),
                "hello ü\n"
            );
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(format!("{partial}/bin/run.sh"))
                    .expect("stat")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o755);
            }
            assert_eq!(
                sh(&version_exists(&b(&format!("v/{r}"))).render(), b"").0,
                VERSION_ABSENT
            );
            let (code, _, err) = sh(
                &finish_version(&partial, &b(&format!("v/{r}"))).render(),
                b"",
            );
            assert_eq!(code, 0, "{err}");
            assert_eq!(
                sh(&version_exists(&b(&format!("v/{r}"))).render(), b"").0,
                0
            );
            assert!(!Path::new(&partial).exists());
        }
        // Re-finishing an existing version replaces it.
        std::fs::create_dir_all(b("v/.partial-r1")).expect("mkdir");
        std::fs::write(b("v/.partial-r1/new"), "n").expect("write");
        assert_eq!(
            sh(
                &finish_version(&b("v/.partial-r1"), &b("v/r1")).render(),
                b""
            )
            .0,
            0
        );
        assert!(Path::new(&b("v/r1/new")).exists());
        assert!(!Path::new(&b("v/r1/index.html")).exists());

        // Truncated archive fails.
        let (code, _, _) = sh(
            &unpack_into_partial(&b("v/.partial-bad")).render(),
            &archive[..archive.len() / 2],
        );
        assert_ne!(code, 0);

        // Switch the link twice, then inspect it.
        for r in ["r1", "r2"] {
            let (code, _, err) = sh(
                &switch_link(&b("www/current"), &b(&format!("v/{r}")), &b("www/.tmp")).render(),
                b"",
            );
            assert_eq!(code, 0, "{err}");
            let target = std::fs::read_link(b("www/current")).expect("readlink");
            assert_eq!(target, Path::new(&b(&format!("v/{r}"))));
            assert!(!Path::new(&b("www/.tmp")).exists());
            let (code, out, _) = sh(&inspect_deploy_path(&b("www/current")).render(), b"");
            assert_eq!(code, 0);
            assert_eq!(out, format!("{}\n", b(&format!("v/{r}"))));
        }
        // A deploy path whose parent folders do not exist yet: made.
        let (code, _, err) = sh(
            &switch_link(&b("new/parent/current"), &b("v/r1"), &b("new/parent/.tmp")).render(),
            b"",
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::read_link(b("new/parent/current")).expect("readlink"),
            Path::new(&b("v/r1"))
        );

        // List: only real directories, no dot-folders or files.
        std::fs::write(b("v/file"), "").expect("write");
        std::fs::create_dir_all(b("v/.partial-x")).expect("mkdir");
        std::fs::create_dir_all(b("v/r 3 ü")).expect("mkdir");
        let (code, out, _) = sh(&list_versions(&b("v")).render(), b"");
        assert_eq!(code, 0);
        let mut listed: Vec<&str> = out.lines().collect();
        listed.sort();
        assert_eq!(listed, vec!["r 3 ü", "r1", "r2"]);
        assert_eq!(
            sh(&list_versions(&b("nope")).render(), b""),
            (0, String::new(), String::new())
        );

        // Remove: bad names refused before anything is removed; then real removal.
        let (code, _, _) = sh(
            &remove_versions(&b("v"), &["r1".into(), "..".into()]).render(),
            b"",
        );
        assert_eq!(code, REFUSED_VERSION_NAME);
        assert!(Path::new(&b("v/r1")).exists());
        let (code, _, err) = sh(
            &remove_versions(
                &b("v"),
                &["r1".into(), "r 3 ü".into(), "$(touch pwned)".into()],
            )
            .render(),
            b"",
        );
        assert_eq!(code, 0, "{err}");
        let (_, out, _) = sh(&list_versions(&b("v")).render(), b"");
        assert_eq!(out, "r2\n");
        assert_eq!(sh(&remove_versions(&b("v"), &[]).render(), b"").0, 0);

        // write_file creates the parent.
        assert_eq!(
            sh(&write_file(&b("shared/conf/.env")).render(), b"A=1\n").0,
            0
        );
        assert_eq!(
            std::fs::read_to_string(b("shared/conf/.env")).expect("read"),
            "A=1\n"
        );

        // Hooks: variables are literal, the script comes from stdin, exit codes.
        let env = vec![("VAL".to_owned(), format!("it's {PWNED} \"ü\"\nline 2"))];
        let hook = |dir: &str, env: &[(String, String)], t: u64, script: &str| {
            sh_held(
                &run_hook(dir, t).render(),
                &hook_input(env, script).expect("input"),
            )
        };
        let script = "printf '%s\\n' \"$VAL\" > hook-out\ncat\necho after-cat >> hook-out\n";
        let (code, _, err) = hook(&b("v/r2"), &env, 10, script);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::read_to_string(b("v/r2/hook-out")).expect("read"),
            format!("it's {PWNED} \"ü\"\nline 2\nafter-cat\n")
        );
        // While the hook runs, its staging folder holds the script alone: the variables file
        // is gone once read (a wrapper killed by SIGKILL cannot run its EXIT trap).
        let (code, _, err) = hook(
            &b("v/r2"),
            &env,
            10,
            "ls -A \"$(dirname \"$0\")\" > staged\n",
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::read_to_string(b("v/r2/staged")).expect("read"),
            "hook\n"
        );
        assert_eq!(hook(&b("v/r2"), &[], 10, "false\necho not-reached\n").0, 1);
        assert_eq!(hook(&b("v/r2"), &[], 10, "exit 3\n").0, 3);
        assert_eq!(hook(&b("missing"), &[], 10, "true\n").0, HOOK_CANNOT_CD);
        // A name the builder would refuse, framed by hand: the host refuses it too.
        let (code, _, err) = sh_held(&run_hook(&b("v/r2"), 10).render(), b"4 5\nA-B\0true\n");
        assert_eq!(code, HOOK_BAD_ENV_NAME, "{err}");
        // Bad framing.
        assert_eq!(
            sh_held(&run_hook(&b("v/r2"), 10).render(), b"x 5\ntrue\n").0,
            HOOK_CANNOT_STAGE_SCRIPT
        );
        assert_eq!(hook(&b("v/r2"), &[], 1, "sleep 5\n").0, HOOK_TIMED_OUT);

        assert!(!Path::new(&b("pwned")).exists());
        assert!(!pwned_marker.exists());
    }

    #[test]
    fn whoami_and_check_writable_render() {
        assert_eq!(whoami().render(), "id -un");
        assert_eq!(
            check_writable(&["/srv/www".to_owned(), AWKWARD.to_owned()]).render(),
            "sh -c 'for p in \"$@\"; do q=$p; while [ ! -e \"$q\" ] && [ ! -L \"$q\" ] && [ \"$q\" != / ]; do q=$(dirname -- \"$q\"); done; if [ -d \"$q\" ] && [ -w \"$q\" ]; then echo yes; else echo no; fi; done' sh /srv/www '/srv/it'\\''s a dir/ü'"
        );
    }

    #[test]
    fn install_authorized_key_render() {
        assert_eq!(
            install_authorized_key("ssh-ed25519 AAAAkey hippo", "AAAAkey").render(),
            "sh -c 'umask 077; d=\"$HOME/.ssh\"; f=\"$d/authorized_keys\"; mkdir -p -- \"$d\" && chmod 700 -- \"$d\" || exit 1; if [ -f \"$f\" ] && grep -qF -- \"$2\" \"$f\"; then echo present; exit 0; fi; if [ -s \"$f\" ] && [ -n \"$(tail -c 1 -- \"$f\")\" ]; then printf \"\\n\" >> \"$f\" || exit 1; fi; printf \"%s\\n\" \"$1\" >> \"$f\" && chmod 600 -- \"$f\" && echo added' sh 'ssh-ed25519 AAAAkey hippo' AAAAkey"
        );
    }

    /// Runs `rendered` with `sh -c` and HOME set to `home`; (exit code, stdout).
    fn sh_home(rendered: &str, home: &Path) -> (i32, String) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(rendered)
            .env("HOME", home)
            .stdin(Stdio::null())
            .output()
            .expect("sh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn install_authorized_key_runs_locally_once_with_modes() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().expect("tempdir");
        let cmd = install_authorized_key("ssh-ed25519 AAAAkey hippo", "AAAAkey").render();
        assert_eq!(sh_home(&cmd, home.path()), (0, "added\n".to_owned()));
        assert_eq!(sh_home(&cmd, home.path()), (0, "present\n".to_owned()));
        let keys = home.path().join(".ssh/authorized_keys");
        assert_eq!(
            std::fs::read_to_string(&keys).expect("read"),
            "ssh-ed25519 AAAAkey hippo\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&home.path().join(".ssh")), 0o700);
        assert_eq!(mode(&keys), 0o600);
        // A file whose last line has no newline gets one before the new key.
        std::fs::write(&keys, "ssh-ed25519 AAAAother you").expect("write");
        assert_eq!(sh_home(&cmd, home.path()), (0, "added\n".to_owned()));
        assert_eq!(
            std::fs::read_to_string(&keys).expect("read"),
            "ssh-ed25519 AAAAother you\nssh-ed25519 AAAAkey hippo\n"
        );
        // Nothing a key line holds is run by a shell.
        let marker = home.path().join("pwned");
        let evil = format!("ssh-ed25519 AAAAx $(touch {})", marker.display());
        let (code, _) = sh_home(
            &install_authorized_key(&evil, "AAAAx").render(),
            home.path(),
        );
        assert_eq!(code, 0);
        assert!(!marker.exists());
    }

    #[test]
    fn check_writable_runs_locally() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a");
        std::fs::create_dir(&dir).expect("mkdir");
        let paths = vec![
            dir.display().to_string(),
            dir.join("not/yet/there").display().to_string(),
            // Below a plain file: nothing can be made there.
            tmp.path().join("file/sub").display().to_string(),
        ];
        std::fs::write(tmp.path().join("file"), "x").expect("write");
        let (code, out) = sh_home(&check_writable(&paths).render(), tmp.path());
        assert_eq!((code, out.as_str()), (0, "yes\nyes\nno\n"));
    }

    /// Pids whose command line contains `needle`.
    fn pids_running(needle: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
            {
                out.push(pid);
            }
        }
        out
    }

    #[test]
    fn a_hook_stops_when_its_stdin_closes_and_its_variables_stay_off_command_lines() {
        use std::io::Write;
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().expect("tempdir");
        // A value big enough to break a command line (over 128 KiB would fail `execve` as one
        // argument), and a marker that must not show in any process's command line.
        let secret = format!("s3cr3t-{}", std::process::id());
        let env = vec![
            ("SECRET".to_owned(), secret.clone()),
            ("BIG".to_owned(), "x".repeat(100_000)),
        ];
        // A sleep whose command line is unique to this test.
        let nap = format!("{}.{}", 300 + std::process::id() % 100, std::process::id());
        let script = format!("test ${{#BIG}} -eq 100000\necho ready\nsleep {nap}\n");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(run_hook(&dir.path().display().to_string(), 600).render())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(&hook_input(&env, &script).expect("input"))
            .expect("write");
        let started = Instant::now();
        let sleeping = loop {
            let found = pids_running(&format!("sleep {nap}"));
            if !found.is_empty() {
                break found;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the hook did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            pids_running(&secret).is_empty(),
            "a variable's value is on a command line"
        );
        // The channel closes (the worker died): stdin ends.
        drop(input);
        let closed = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            assert!(
                closed.elapsed() < Duration::from_secs(10),
                "the hook outlived its stdin"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(128 + 15), "stopped with SIGTERM");
        for pid in sleeping {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z ")),
                "the hook's sleep {pid} still runs"
            );
        }
        assert!(
            closed.elapsed() < Duration::from_secs(3),
            "{:?}",
            closed.elapsed()
        );
    }

    #[test]
    fn probe_receive_and_clean_render() {
        assert_eq!(
            probe_host("/srv/www/current", "/srv/v", "").render(),
            format!("sh -c {} sh /srv/www/current /srv/v ''", q(PROBE_HOST))
        );
        assert_eq!(
            receive_version("/srv/v", "r 1", Codec::Zstd).render(),
            format!("sh -c {} sh /srv/v 'r 1' zstd", q(RECEIVE_VERSION))
        );
        assert_eq!(
            clean_versions("/srv/v", 5, "", &["r1", PWNED]).render(),
            format!(
                "sh -c {} sh /srv/v 5 '' r1 '$(touch /tmp/pwned)'",
                q(CLEAN_VERSIONS)
            )
        );
        assert_eq!(
            clean_versions("/srv/v", 2, "r 1", &["r 1"]).render(),
            format!("sh -c {} sh /srv/v 2 'r 1' 'r 1'", q(CLEAN_VERSIONS))
        );
        assert_eq!(clean_input(b"xyz"), b"3\nxyz");
        assert_eq!(delta_input(b"ab", b"c", b""), b"2 1 0\n");
        assert_eq!(
            read_file("/srv/v/.r1.hippo.json").render(),
            "cat -- /srv/v/.r1.hippo.json"
        );
        assert_eq!(receive_input(b"{}"), b"2\n");
    }

    #[test]
    fn a_probe_says_what_is_on_the_host() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let b = |p: &str| format!("{}/{p}", tmp.path().display());
        let probe = |version: &str| {
            let (code, out, err) = sh(
                &probe_host(&b("www/current"), &b("v"), version).render(),
                b"",
            );
            let lines: Vec<String> = out.lines().map(str::to_owned).collect();
            (code, ProbeReport::parse(&lines), err)
        };
        let zstd = Command::new("sh")
            .args(["-c", "zstd -V"])
            .output()
            .expect("sh")
            .status
            .success();
        let (code, r, err) = probe("");
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            r,
            ProbeReport {
                zstd,
                ..ProbeReport::default()
            }
        );
        std::fs::create_dir_all(b("v/r1")).expect("mkdir");
        std::fs::create_dir_all(b("www")).expect("mkdir");
        std::fs::write(b("v/.r1.hippo.json"), "{}").expect("write");
        std::os::unix::fs::symlink(b("v/r1"), b("www/current")).expect("symlink");
        let (code, r, _) = probe("r1");
        assert_eq!(code, 0);
        assert_eq!(r.link, Some(b("v/r1")));
        assert!(r.present);
        assert_eq!(
            r.base_manifest.as_deref(),
            Some("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
        assert!(!probe("r2").1.present);
        std::fs::remove_file(b("www/current")).expect("rm");
        std::fs::create_dir(b("www/current")).expect("mkdir");
        assert_eq!(probe("").0, DEPLOY_PATH_IS_NOT_A_LINK);
    }

    #[test]
    fn a_version_is_received_in_one_command_with_either_codec() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let v = tmp.path().join("it's v ü").display().to_string();
        let src = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(src.path().join("bin")).expect("mkdir");
        std::fs::write(src.path().join("bin/run.sh"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(
            src.path().join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        let gz = tar_gz_of(src.path());
        let zst = Command::new("tar")
            .args(["-I", "zstd", "-cf", "-", "-C"])
            .arg(src.path())
            .arg(".")
            .output()
            .expect("tar --zstd")
            .stdout;
        for (codec, archive, name) in [(Codec::Gzip, &gz, "r1"), (Codec::Zstd, &zst, "r2")] {
            let manifest = br#"{"files":[]}"#;
            let mut input = receive_input(manifest);
            input.extend_from_slice(manifest);
            input.extend_from_slice(archive);
            let (code, _, err) = sh(&receive_version(&v, name, codec).render(), &input);
            assert_eq!(code, 0, "{codec:?}: {err}");
            let dir = Path::new(&v).join(name);
            let mode = std::fs::metadata(dir.join("bin/run.sh"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
            assert_eq!(
                std::fs::read(Path::new(&v).join(format!(".{name}.hippo.json"))).expect("read"),
                manifest
            );
            assert!(!Path::new(&v).join(format!(".partial-{name}")).exists());
        }
        // No manifest (a rollback re-sending a version): none written.
        let mut input = receive_input(b"");
        input.extend_from_slice(&gz);
        assert_eq!(
            sh(&receive_version(&v, "r3", Codec::Gzip).render(), &input).0,
            0
        );
        assert!(Path::new(&v).join("r3/bin/run.sh").exists());
        assert!(!Path::new(&v).join(".r3.hippo.json").exists());
        // Bad framing; a broken archive leaves no version folder.
        assert_eq!(
            sh(&receive_version(&v, "r4", Codec::Gzip).render(), b"x\n").0,
            RECEIVE_BAD_INPUT
        );
        let mut input = receive_input(b"");
        input.extend_from_slice(&gz[..gz.len() / 2]);
        assert_ne!(
            sh(&receive_version(&v, "r4", Codec::Gzip).render(), &input).0,
            0
        );
        assert!(!Path::new(&v).join("r4").exists());
    }

    #[test]
    fn cleanup_on_the_host_follows_the_same_rule_as_to_remove() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let v = tmp.path().join("v ü");
        let names = ["a1", "a2", "a3", "a4", "a5"];
        let cases: [(usize, &[&str]); 4] =
            [(2, &["a5"]), (2, &["a5", "a1"]), (0, &[]), (9, &["a1"])];
        for (keep, protect) in cases {
            let _ = std::fs::remove_dir_all(&v);
            for n in names {
                std::fs::create_dir_all(v.join(n)).expect("mkdir");
                std::fs::write(v.join(format!(".{n}.hippo.json")), "{}").expect("write");
            }
            std::fs::create_dir_all(v.join(".partial-a0")).expect("mkdir");
            std::fs::write(v.join("file"), "").expect("write");
            let (code, out, err) = sh(
                &clean_versions(&v.display().to_string(), keep, "", protect).render(),
                b"",
            );
            assert_eq!(code, 0, "{err}");
            let removed: Vec<String> = out.lines().map(str::to_owned).collect();
            let expected = crate::cleanup::to_remove(
                names.iter().map(|s| s.to_string()).collect(),
                keep,
                protect,
            );
            assert_eq!(removed, expected, "keep {keep}, protect {protect:?}");
            for n in names {
                let gone = expected.iter().any(|e| e == n);
                assert_eq!(!v.join(n).exists(), gone, "{n}");
                assert_eq!(!v.join(format!(".{n}.hippo.json")).exists(), gone, "{n}");
            }
            assert!(v.join(".partial-a0").exists());
            // The removed folders were renamed at once and are deleted after the answer.
            let started = std::time::Instant::now();
            while std::fs::read_dir(&v)
                .expect("read_dir")
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".hippo-gone-"))
            {
                assert!(started.elapsed() < std::time::Duration::from_secs(20));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        assert_eq!(
            sh(&clean_versions("/nonexistent/x", 2, "", &[]).render(), b""),
            (0, String::new(), String::new())
        );
    }
}
