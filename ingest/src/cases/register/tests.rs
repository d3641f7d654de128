use super::*;

fn settings() -> CaseSettings {
    CaseSettings::default()
}

const HEADER: &str = "case_id,case_type,title,unit,officers,window_start,window_end,place,status\n";

#[test]
fn rows_of_one_case_merge_and_ids_stay_as_written() {
    let csv = format!(
        "{HEADER}晋应急罚〔2023〕102号,一般程序,某矿业公司安全检查,执法一中队,14010001;14010002,2023-05-06T09:00:00+08:00,2023-05-06T11:00:00+08:00,某镇,open\n\
         晋应急罚〔2023〕102号,,,,14010003；14010001,2023-05-08 01:00:00Z,2023-05-08T02:30:00Z,,\n"
    );
    let cases = parse("r.csv", csv.as_bytes(), Format::Csv, &settings()).unwrap();
    assert_eq!(cases.len(), 1);
    let c = &cases[0].record;
    assert_eq!(c.case.as_str(), "晋应急罚〔2023〕102号");
    assert_eq!(c.officers.len(), 3);
    assert_eq!(c.windows.len(), 2);
    assert_eq!(c.windows[0].start.to_string(), "2023-05-06T01:00:00.000Z");
    assert_eq!(c.windows[1].end.to_string(), "2023-05-08T02:30:00.000Z");
    assert_eq!(cases[0].lines, vec![2, 3]);
}

#[test]
fn every_bad_row_is_reported_with_its_line() {
    let csv = format!(
        "{HEADER}A1,,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T08:00:00+08:00,,\n\
         A2,,,,,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,\n\
         A3,,,,p1,2023-05-06 09:00,2023-05-06T10:00:00+08:00,,maybe\n\
         A4,,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,\n"
    );
    let e = parse("r.csv", csv.as_bytes(), Format::Csv, &settings()).unwrap_err();
    let lines: Vec<_> = e.problems.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        lines,
        vec![
            (2, Some("window_end")),
            (3, Some("officers")),
            (4, Some("window_start")),
            (4, Some("status"))
        ],
        "{e}"
    );
    assert!(e.to_string().contains("+08:00"), "{e}");
}

#[test]
fn gbk_files_bom_and_json_are_read() {
    let csv = format!(
        "\u{feff}{HEADER}晋应急罚〔2023〕7号,简易程序,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,已结案\n"
    );
    let gbk = evidock_verify::gbk::encode(&csv.replace('\u{feff}', "")).unwrap();
    for bytes in [csv.as_bytes().to_vec(), gbk] {
        let c = parse("r.csv", &bytes, Format::Csv, &settings()).unwrap();
        assert_eq!(c[0].record.case.as_str(), "晋应急罚〔2023〕7号");
        assert_eq!(c[0].record.status, CaseStatus::Closed);
    }
    let json = r#"{"cases":[{"case_id":"X-1","officers":["p1","p2"],"windows":[{"start":"2023-05-06T01:00:00Z","end":"2023-05-06T02:00:00Z"}]}]}"#;
    let c = parse("r.json", json.as_bytes(), Format::Json, &settings()).unwrap();
    assert_eq!(c[0].record.officers.len(), 2);
    assert_eq!(c[0].record.windows.len(), 1);
}

#[test]
fn conflicting_rows_of_one_case_are_refused() {
    let csv = format!(
        "{HEADER}A1,一般程序,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,\n\
         A1,简易程序,,,p1,2023-05-07T09:00:00+08:00,2023-05-07T10:00:00+08:00,,\n"
    );
    let e = parse("r.csv", csv.as_bytes(), Format::Csv, &settings()).unwrap_err();
    assert_eq!(e.problems[0].line, 3);
    assert_eq!(e.problems[0].column, Some("case_type"));
}
