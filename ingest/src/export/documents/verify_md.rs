//! VERIFY.md: how a receiver checks the package step by step, with stock tools, OpenSSL and
//! evidock-verify. Apart as one document of the package (mostly its text).

use super::Context;

pub(super) fn verify_md(ctx: &Context<'_>) -> String {
    let token = ctx.tokened.iter().next_back();
    let tool = match ctx.verifier_sha {
        Some(s) => format!(
            "`tools/evidock-verify` (Linux x86-64) SHA-256: `{s}`\n\n\
             本工具由提交方提供，同样不能证明自己：最好自行从源代码构建并比较结论。\n\
             This tool comes from the presenting party too and cannot vouch for itself: build your own \
             from source (evidock {v}, `cargo build --release --locked -p evidock-verify`, Rust 1.95; \
             Windows: `--target x86_64-pc-windows-gnu`) and compare its verdict.\n",
            v = env!("CARGO_PKG_VERSION")
        ),
        None => format!(
            "The verifier is not in this package. Build it from source / 从源代码构建: evidock {}, `cargo build --release --locked -p evidock-verify` (Rust 1.95).\n",
            env!("CARGO_PKG_VERSION")
        ),
    };
    let ts = match token {
        Some(size) => format!(
            "```sh\nopenssl ts -verify -data custody/checkpoints/{size}.note -in custody/timestamps/{size}.tsr -CAfile TSA-ROOT.pem\n```\n\n\
             `TSA-ROOT.pem` 是您从时间戳服务机构自己公布的渠道取得的根证书——不是本包中的 `custody/tsa/` 文件（那是提交方提供的，任何人都能自制时间戳证书）。\
             在此前提下 `Verification: OK` 表示该检查点及其覆盖的全部事件在时间戳时间之前已存在。\n\n\
             `TSA-ROOT.pem` is the root certificate you obtained from the TSA's own publication — not the `custody/tsa/` \
             files of this package, which come from the presenting party (anyone can make a TSA certificate). With that root, \
             `Verification: OK` means the checkpoint, and every event under it, existed at the TSA's time.\n"
        ),
        None => "本包不含 RFC 3161 时间戳（采集站未配置时间戳服务）：时间为采集站时间。\n\
                 This package has no RFC 3161 tokens (the station had no TSA): times are the station's.\n"
            .to_string(),
    };
    format!(
        "# 核验说明 / How to verify this package

案件 Case: {case} · 采集站 Station: {station} · 生成 Created: {created}

## 0. 信任什么 / What to trust

本包中的一切——密钥、证书、校验值、本说明和工具——都来自提交方，不能证明自己。只信任您自己固定的两样东西：

- **采集站密钥指纹**：从交接时签字的纸质《电子数据提取笔录》抄录，绝不要从本包复制；
- **时间戳服务（TSA）根证书**：从时间戳服务机构自己公布的渠道取得（其网站、公告或认证机构），绝不要用本包中的文件。

Everything in this package — keys, certificates, sums, this text and the tool — comes from the party
presenting it and cannot vouch for itself. Trust only what you pin yourself:

- **the station key fingerprint**, copied from the paper collection record (提取笔录) signed at
  hand-over — never from this package;
- **the TSA root certificate**, from the TSA's own publication (its website, notice, or the
  certification authority) — never from a file in this package.

## 1. 发现损坏 / Damage (stock tools)

Linux / 麒麟 Kylin:

```sh
sha256sum -c SHA256SUMS
```

Windows (命令提示符 cmd):

```bat
certutil -hashfile \"originals\\FILE\" SHA256
```

Windows PowerShell（整包 / the whole package）:

```powershell
Get-ChildItem -Recurse -File | Get-FileHash -Algorithm SHA256 | Format-Table Hash, Path
```

全部为 `OK`（或与 `SHA256SUMS`、`evidence-list.csv` 中的值逐一相同，大小写无关）只说明文件在传输或存储中没有损坏。
`SHA256SUMS` 本身没有签名：伪造者可以同时改动文件和它的校验值。它发现损坏，不发现伪造。

Every line `OK` (or each value equal to the one in `SHA256SUMS` or `evidence-list.csv`, case does not
matter) shows only that the files were not damaged in transit or storage. `SHA256SUMS` is not signed:
a forger can change a file and its line together. It detects damage, not forgery.

## 2. 可信时间 / Trusted time (OpenSSL)

{ts}
## 3. 发现伪造 / Forgery (evidock-verify)

先写 `trust.toml`，两项都从您自己的来源抄录 / First write `trust.toml`, both values from your own sources:

```toml
[[station]]
# 从纸质提取笔录抄录“采集站密钥指纹” / copied from the paper collection record
fingerprint = \"<64 位十六进制 / 64 hex digits>\"

[[tsa]]
# 时间戳服务机构自己公布的根证书 / the root certificate the TSA itself publishes
root_file = \"tsa-root.pem\"
```

用您自己的 evidock-verify（自行从源代码构建，或从提交方以外的渠道取得）运行；本包中的 `tools/evidock-verify` 来自提交方，只作比较之用（见下文）。
Run your own evidock-verify (built from source, or obtained other than from the presenting party);
the `tools/evidock-verify` in this package comes from the presenting party and serves only for
comparison (see below).

```sh
evidock-verify . --trust trust.toml
```

它离线检查每个文件的校验值、清单签名、每个监管链事件在签名检查点中的包含证明、检查点之间的一致性、
RFC 3161 时间戳、原始文件与采集事件及派生文件与转码事件的对应、与案件的关联。结论：

- `Integrity: PROVEN` — 签名清单与监管链证明均由您固定的采集站密钥签署：任何伪造都会被发现；
- `Integrity: CONSISTENT` — 没有错误，但采集站密钥未固定：只与本包自带的密钥一致，这不证明任何事；
- `Time: ATTESTED` — 时间戳的证书链止于您固定的根证书；否则 `NOT ATTESTED` 并说明原因。

退出码 0：全部在您的信任锚下得到证明；1：有错误；2：无法运行；3：没有错误，但有依据未被您固定。

It checks offline every file's digest, the manifest's seal, each custody event's inclusion under the
station's signed checkpoint, consistency between checkpoints, the RFC 3161 tokens, that each original
is the one acquired and each derivative was made from it, and the links to the case. The verdict:

- `Integrity: PROVEN` — the signed manifest and custody proofs are under the station key you pinned:
  forgery is detected;
- `Integrity: CONSISTENT` — no errors, but the station key is not pinned: the package only agrees with
  the key it brings itself, which proves nothing;
- `Time: ATTESTED` — the tokens' chains end at a TSA root you pinned; otherwise `NOT ATTESTED`, with why.

Exit status 0: everything proven under your anchors; 1: errors; 2: could not run; 3: no errors, but
something rests on an anchor you did not pin.

若您已持有该采集站较早的检查点（较早移送包的提取笔录上的“监管链检查点”，或采集站公布的日志），可要求本包与之一致：
If you already hold an earlier checkpoint of this station (the \"custody checkpoint\" on an earlier
package's collection record, or the station's published log), hold this package to it:

```sh
evidock-verify . --trust trust.toml --expect SIZE:ROOT
evidock-verify . --trust trust.toml --expect-checkpoint earlier.note
```

{tool}
## 4. 播放 / Playing

`derivatives/` 中为 H.264/AAC MP4 播放副本，任何播放器可播放；它们是派生文件，不是原始证据。原始文件在 `originals/`，逐字节与执法记录仪一致。
`derivatives/` holds H.264/AAC MP4 playback copies any player opens; they are derivatives, not the
original evidence. The originals in `originals/` are bit-identical to what left the camera.
",
        case = ctx.view.entry.record.case,
        station = ctx.station,
        created = ctx.time(ctx.created.0),
    )
}
