//! JUnit XML read back with roxmltree: the structure two reports are compared by, and the
//! rules of the JUnit schema that GitHub's test reporters read (the common `JUnit.xsd` of
//! Jenkins and Ant: `testsuites` > `testsuite` > `testcase` > `failure` | `error` | `skipped`,
//! `system-out`, `system-err`). Used by `tests/grade.rs` and by the unit tests of
//! `src/grade/report.rs`.

use std::collections::BTreeMap;

/// An element: its name, attributes, text, and child elements in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    /// Its own text; the whitespace that only indents its child elements is left out.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// Parses a whole document (well-formed XML 1.0, or an error) into its root element.
pub fn parse(xml: &str) -> Result<Element, String> {
    let document = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    Ok(element(document.root_element()))
}

fn element(node: roxmltree::Node) -> Element {
    let text: String = node.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect();
    let has_elements = node.children().any(|child| child.is_element());
    Element {
        name: node.tag_name().name().to_string(),
        attributes: node
            .attributes()
            .map(|attribute| (attribute.name().to_string(), attribute.value().to_string()))
            .collect(),
        text: if has_elements && text.trim().is_empty() { String::new() } else { text },
        children: node.children().filter(|child| child.is_element()).map(element).collect(),
    }
}

/// Checks that `new` says what `old` (the hand-written writer's report) said. Two differences
/// are allowed, both from quick-junit: it writes `skipped="0"` on `testsuites` and each
/// `testsuite` (the old writer left it out: nothing is ever skipped), and its text has no tab
/// characters (the grader writes a space instead).
pub fn same_report(old: &Element, new: &Element) -> Result<(), String> {
    difference(&normalised(old), &normalised(new), &old.name).map_or(Ok(()), Err)
}

fn normalised(element: &Element) -> Element {
    let mut attributes = element.attributes.clone();
    if attributes.get("skipped").is_some_and(|n| n == "0") {
        attributes.remove("skipped");
    }
    for value in attributes.values_mut() {
        *value = value.replace('\t', " ");
    }
    Element {
        name: element.name.clone(),
        attributes,
        text: element.text.replace('\t', " "),
        children: element.children.iter().map(normalised).collect(),
    }
}

fn difference(old: &Element, new: &Element, path: &str) -> Option<String> {
    if old.name != new.name {
        return Some(format!("{path}: <{}> became <{}>", old.name, new.name));
    }
    if old.attributes != new.attributes {
        return Some(format!(
            "{path}: attributes {:?} became {:?}",
            old.attributes, new.attributes
        ));
    }
    if old.text != new.text {
        return Some(format!("{path}: text {:?} became {:?}", old.text, new.text));
    }
    if old.children.len() != new.children.len() {
        return Some(format!(
            "{path}: {} children became {}",
            old.children.len(),
            new.children.len()
        ));
    }
    old.children.iter().zip(&new.children).enumerate().find_map(|(index, (old, new))| {
        let name = old.attribute("name").map(|n| format!("[{n}]")).unwrap_or_default();
        difference(old, new, &format!("{path}/{}#{index}{name}", old.name))
    })
}

/// What the schema requires of a report, and that its counts add up.
pub fn check_schema(root: &Element) -> Result<(), String> {
    expect_name(root, "testsuites", "the document")?;
    let suite_attributes =
        ["name", "tests", "failures", "errors", "skipped", "disabled", "time", "timestamp"];
    check_attributes(root, &[], &suite_attributes)?;
    let mut totals = Counts::default();
    for suite in &root.children {
        expect_name(suite, "testsuite", "<testsuites>")?;
        let name = suite.attribute("name").unwrap_or("?");
        check_attributes(
            suite,
            &["name", "tests"],
            &[&suite_attributes[..], &["hostname", "id", "package"]].concat(),
        )?;
        let order = ["properties", "testcase", "system-out", "system-err"];
        check_order(suite, &order, &format!("testsuite {name}"))?;
        let mut counts = Counts::default();
        for case in suite.children.iter().filter(|c| c.name == "testcase") {
            check_test_case(case)?;
            counts.add(case);
        }
        counts.check(suite, &format!("testsuite {name}"))?;
        totals.tests += counts.tests;
        totals.failures += counts.failures;
        totals.errors += counts.errors;
        totals.skipped += counts.skipped;
    }
    totals.check(root, "testsuites")
}

fn check_test_case(case: &Element) -> Result<(), String> {
    let name = case.attribute("name").unwrap_or("?");
    let allowed = ["name", "classname", "time", "assertions", "status", "file", "line"];
    check_attributes(case, &["name"], &allowed)?;
    let order = ["properties", "outcome", "system-out", "system-err"];
    let outcomes = ["failure", "error", "skipped"];
    let mut kinds = case.clone();
    for child in &mut kinds.children {
        if outcomes.contains(&child.name.as_str()) {
            child.name = "outcome".to_string();
        }
    }
    check_order(&kinds, &order, &format!("testcase {name}"))?;
    let n_outcomes = case.children.iter().filter(|c| outcomes.contains(&c.name.as_str())).count();
    if n_outcomes > 1 {
        return Err(format!("testcase {name}: more than one of failure, error and skipped"));
    }
    for child in &case.children {
        if !child.children.is_empty() {
            return Err(format!("testcase {name}: <{}> has child elements", child.name));
        }
        if outcomes.contains(&child.name.as_str()) {
            check_attributes(child, &[], &["message", "type"])?;
        } else if child.name != "properties" && !child.attributes.is_empty() {
            return Err(format!("testcase {name}: <{}> has attributes", child.name));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counts {
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
}

impl Counts {
    fn add(&mut self, case: &Element) {
        self.tests += 1;
        for child in &case.children {
            match child.name.as_str() {
                "failure" => self.failures += 1,
                "error" => self.errors += 1,
                "skipped" => self.skipped += 1,
                _ => {}
            }
        }
    }

    /// The element's counts (absent ones are 0; `tests` absent is not checked at the root,
    /// where the schema makes it optional) against what it holds.
    fn check(&self, element: &Element, what: &str) -> Result<(), String> {
        for (attribute, actual) in [
            ("tests", self.tests),
            ("failures", self.failures),
            ("errors", self.errors),
            ("skipped", self.skipped),
        ] {
            let Some(written) = element.attribute(attribute) else {
                if actual != 0 && attribute != "tests" {
                    return Err(format!("{what}: no {attribute} attribute, {actual} found"));
                }
                continue;
            };
            let written: u64 = written
                .parse()
                .map_err(|_| format!("{what}: {attribute}=\"{written}\" is not a count"))?;
            if written != actual {
                return Err(format!("{what}: {attribute}=\"{written}\", but {actual} found"));
            }
        }
        Ok(())
    }
}

fn expect_name(element: &Element, name: &str, inside: &str) -> Result<(), String> {
    if element.name == name {
        Ok(())
    } else {
        Err(format!("{inside}: <{}> where <{name}> belongs", element.name))
    }
}

/// Every required attribute present, no other than the allowed ones, and times that are
/// non-negative decimals (`TIME` where a golden file normalised them).
fn check_attributes(element: &Element, required: &[&str], allowed: &[&str]) -> Result<(), String> {
    let what = format!("<{} name={:?}>", element.name, element.attribute("name").unwrap_or(""));
    for attribute in required {
        if element.attribute(attribute).is_none() {
            return Err(format!("{what}: the {attribute} attribute is required"));
        }
    }
    for (attribute, value) in &element.attributes {
        if !allowed.contains(&attribute.as_str()) && !required.contains(&attribute.as_str()) {
            return Err(format!("{what}: the schema has no {attribute} attribute here"));
        }
        let is_time = value == "TIME" || value.parse::<f64>().is_ok_and(|t| t >= 0.0);
        if attribute == "time" && !is_time {
            return Err(format!("{what}: time=\"{value}\" is not a duration in seconds"));
        }
    }
    Ok(())
}

/// The children are of the kinds in `order`, in that order; only `testcase` may repeat.
fn check_order(element: &Element, order: &[&str], what: &str) -> Result<(), String> {
    let mut last = 0;
    let mut previous: Option<&str> = None;
    for child in &element.children {
        let Some(at) = order.iter().position(|kind| *kind == child.name) else {
            return Err(format!("{what}: <{}> does not belong here", child.name));
        };
        let repeated = previous == Some(child.name.as_str());
        if at < last || (repeated && child.name != "testcase") {
            return Err(format!("{what}: <{}> is out of the schema's order", child.name));
        }
        last = at;
        previous = Some(child.name.as_str());
    }
    Ok(())
}
