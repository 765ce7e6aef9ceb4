//! The help text, in sections: each flag is described once, in the section of the commands
//! that take it. `strand --help` prints every section; `strand CMD --help` and `strand help
//! CMD` print the sections of one command.

/// The title and the list of commands.
const INTRO: &str = "\
strand — a thread-per-peer BitTorrent client

USAGE:
    strand download FILE.torrent [OPTIONS]   fetch every file of a torrent
    strand download 'magnet:?xt=…' [OPTIONS] the same, from a magnet link (or a bare
                                             info hash: 40 hex digits)
    strand seed FILE.torrent [-d DIR]        check the data in DIR, then seed it
    strand verify FILE.torrent [-d DIR]      check the data in DIR, file by file
    strand create PATH -t URL [OPTIONS]      make a torrent of a file or folder
    strand info FILE.torrent | MAGNET | HASH show what a torrent holds
    strand tracker [--port N] [--bind ADDR]  run a small HTTP and UDP tracker (until Ctrl-C)
    strand dht HASH|'magnet:?xt=…'           join the DHT, look the torrent up, print its peers
    strand help COMMAND                      show the help of one command

";

/// Flags of `download` alone.
const DOWNLOAD_FLAGS: &str =
    "    -o, --output DIR      folder to write the torrent's files under [default: .]
                          (-d, --data DIR is the same)
    --recheck             hash the data already in DIR instead of trusting the
                          resume file (DIR/.strand/HASH.resume)
    --overwrite           replace files in the way that hold none of the torrent's
                          data [default: refuse, naming the file]
    --save-torrent FILE   also write the torrent's metainfo to FILE (for a magnet
                          link: once its metadata has been fetched from peers)
    --preallocate         reserve the files' full size on disk at start, and fail at
                          once if the space is not there [default: sparse files]
    --sequential          fetch pieces in order from the first missing one, to play
                          a file while it downloads [default: rarest first]
    --seed                keep seeding after the download, until Ctrl-C
    --seed-ratio R        keep seeding until uploaded = R × the torrent's size
    --seed-time MINUTES   keep seeding for this long after the download
                          (with both, whichever comes first; without either,
                          strand exits once the files are complete)
";

/// Flags of `download` and `verify`: which files.
const SELECT_FLAGS: &str =
    "    --only LIST           only these files, numbered as `strand info` shows them:
                          e.g. 1,3-5
    --exclude GLOB        skip files whose path, a folder in it, or its name matches
                          GLOB (* matches any run of characters, / included; ? one
                          character): e.g. dir, dir/*, *.txt; repeatable
";

/// What `download` does with the pieces a selection shares with other files.
const SHARED_PIECES: &str =
    "                          (pieces shared with other files are fetched whole; their
                          other bytes are kept in DIR/.strand until the chosen files
                          are complete, then dropped: choosing more files later
                          fetches those pieces again)
";

/// The data folder of `seed` and `verify`.
const DATA_FLAG: &str = "    -d, --data DIR        folder holding the torrent's files [default: .]
                          (-o, --output DIR is the same)
";

/// When `seed` stops.
const SEED_LIMIT_FLAGS: &str = "    --seed-ratio R, --seed-time MINUTES
                          stop seeding at that ratio or after that long
                          [default: seed until Ctrl-C]
";

/// Flags of `create`.
const CREATE_FLAGS: &str =
    "    -t, --tracker URL     announce URL; repeat for backups (one tier each); without
                          one, peers find the torrent over the DHT
    -o, --output FILE     where to write the torrent [default: NAME.torrent]; a
                          folder gets FOLDER/NAME.torrent
    -f, --overwrite       replace FILE if it exists [default: refuse, naming it]
    --piece-length N      piece size in bytes (256K, 256KiB, 1M, 1MiB), a power of
                          two from 16 KiB to 16 MiB [default: chosen for 1,000–2,000
                          pieces]
    --private             mark the torrent private (trackers only, no DHT/PEX)
    --comment TEXT        a comment stored in the torrent
";

/// Flags every session takes (`download` and `seed`), parsed by `args::SessionArgs`.
const SESSION_OPTIONS: &str = "\
PEER OPTIONS (download and seed):
    --port N              port to accept peers on; the next free port is used if
                          it is taken [default: 6881]
    --bind ADDR           address to accept peers on, and to connect and announce from
                          [default: 0.0.0.0]
    --encryption MODE     MSE/PE encryption: prefer (try RC4, fall back to plaintext;
                          accept both), require (RC4 only) or off [default: prefer]
    --peer ADDR           also dial this peer (IP:PORT or HOST:PORT); may be given
                          more than once
    --max-peers N         most peer connections at once; more are refused [default: 100]
    --tracker-timeout S   seconds a tracker round may take; with no peer and no
                          tracker answering for this long, strand gives up [default: 60]
    --no-dht              do not use the DHT (it is on by default, except for private
                          torrents)
    --dht-bootstrap HOST:PORT
                          join the DHT through this node instead of the default
                          routers; may be given more than once
    --download-limit RATE most bytes per second to receive, over all peers and web
                          seeds: e.g. 500K, 8M, 2MiB, 1G (K, KB and KiB alike are
                          powers of 1024); 0 = no limit
    --upload-limit RATE   most bytes per second to send, over all peers; 0 = no limit

";

/// Flags of `dht`, and where the DHT keeps its state.
const DHT_OPTIONS: &str = "\
DHT (download, seed and dht):
    The DHT's UDP port is the peer port's number (--port, --bind). Its node id and the
    nodes that answered are kept in $XDG_STATE_HOME/strand/dht.dat (without
    XDG_STATE_HOME: ~/.local/state/strand/dht.dat) and tried first at the next start.
    `strand dht` takes --port, --bind, --dht-bootstrap and --timeout S (how long to
    look [default: 60]).

";

/// Flags of `tracker`.
const TRACKER_FLAGS: &str =
    "    --port N              port for `strand tracker`, HTTP and UDP [default: 6969]
    --bind ADDR           address for `strand tracker` [default: 127.0.0.1; use
                          0.0.0.0 to serve other machines]
";

/// Flags of every command.
const GENERAL: &str = "\
GENERAL:
    -q, --quiet           no live line, no notes, no per-file listing; errors and the
                          one-line result stay (every command)
    -h, --help            show this help
    -V, --version         show the version

";

/// Logging, resume, Ctrl-C and exit status.
const NOTES: &str = "\
Logging goes to stderr through RUST_LOG, e.g. RUST_LOG=strand=debug;
RUST_LOG=strand::dht=debug narrates each DHT lookup (who was asked, what came back);
RUST_LOG=strand=trace prints every wire message sent and received, per peer.
A download run again with the same -o continues where it stopped: pieces recorded in the
resume file (or found by hashing, when the files changed since) are not fetched again.
Ctrl-C stops cleanly: the trackers hear `stopped`, the writer finishes, the summary is shown;
a second Ctrl-C, half a second or more after the first, stops at once (one press that
arrives twice, as under `timeout`, counts once).
Exit status: 0 when every piece is verified and written (also when Ctrl-C stops the
seeding after that), 1 on an error, 2 on bad usage, 130 when Ctrl-C stops a download
before it is complete.
";

/// `strand --help`: every section.
pub(crate) fn global() -> String {
    [
        INTRO,
        "DOWNLOAD OPTIONS:\n",
        DOWNLOAD_FLAGS,
        SELECT_FLAGS,
        SHARED_PIECES,
        "\nSEED AND VERIFY OPTIONS:\n",
        DATA_FLAG,
        SEED_LIMIT_FLAGS,
        "    (verify also takes --only and --exclude)\n",
        "\nCREATE OPTIONS:\n",
        CREATE_FLAGS,
        "\n",
        SESSION_OPTIONS,
        DHT_OPTIONS,
        "TRACKER OPTIONS:\n",
        TRACKER_FLAGS,
        "\n",
        GENERAL,
        NOTES,
    ]
    .concat()
}

/// `strand CMD --help`: the help of one command, or `None` for an unknown command.
pub(crate) fn command(cmd: &str) -> Option<String> {
    let parts: &[&str] = match cmd {
        "download" => &[
            "strand download — fetch the files of a torrent, resuming what is on disk\n\n",
            "USAGE:\n    strand download FILE.torrent [OPTIONS]\n",
            "    strand download 'magnet:?xt=…' [OPTIONS]\n",
            "    strand download INFOHASH [OPTIONS]     (40 hex digits: the magnet link\n",
            "                                           magnet:?xt=urn:btih:INFOHASH)\n\nOPTIONS:\n",
            DOWNLOAD_FLAGS,
            SELECT_FLAGS,
            SHARED_PIECES,
            "\n",
            SESSION_OPTIONS,
            DHT_OPTIONS,
            GENERAL,
            NOTES,
        ],
        "seed" => &[
            "strand seed — check the data in a folder, then seed it (fetching what is missing\n    of the files there; files not there are not fetched)\n\n",
            "USAGE:\n    strand seed FILE.torrent [-d DIR] [OPTIONS]\n\nOPTIONS:\n",
            DATA_FLAG,
            SEED_LIMIT_FLAGS,
            "\n",
            SESSION_OPTIONS,
            DHT_OPTIONS,
            GENERAL,
        ],
        "verify" => &[
            "strand verify — hash the data in a folder and say, file by file, what is complete\n\n",
            "USAGE:\n    strand verify FILE.torrent [-d DIR] [OPTIONS]\n\nOPTIONS:\n",
            DATA_FLAG,
            SELECT_FLAGS,
            "\n",
            GENERAL,
            "Exit status: 0 when every chosen file is complete, 1 otherwise, 2 on bad usage.\n",
        ],
        "create" => &[
            "strand create — make a torrent of a file or folder\n\n",
            "USAGE:\n    strand create PATH -t URL [OPTIONS]\n\nOPTIONS:\n",
            CREATE_FLAGS,
            "\nThe torrent records its creation date and `created by: strand VERSION`,\n",
            "as mktorrent's and transmission-create's do.\n\n",
            GENERAL,
        ],
        "info" => &[
            "strand info — show what a torrent holds, and its magnet link\n\n",
            "USAGE:\n    strand info FILE.torrent\n",
            "    strand info 'magnet:?xt=…'     (what the link itself names)\n",
            "    strand info INFOHASH           (the same, for a bare 40-hex info hash)\n\n",
            GENERAL,
        ],
        "tracker" => &[
            "strand tracker — run a small HTTP and UDP tracker until Ctrl-C\n\n",
            "USAGE:\n    strand tracker [--port N] [--bind ADDR]\n\nOPTIONS:\n",
            TRACKER_FLAGS,
            "\n",
            GENERAL,
        ],
        "dht" => &[
            "strand dht — join the DHT, look a torrent up and print the peers it finds\n\n",
            "USAGE:\n    strand dht HASH|'magnet:?xt=…' [OPTIONS]\n\n",
            DHT_OPTIONS,
            GENERAL,
        ],
        "help" => {
            &["USAGE:\n    strand help [COMMAND]   show the help of strand or of one command\n"]
        }
        _ => return None,
    };
    Some(parts.concat())
}
