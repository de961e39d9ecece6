// Types of scripts/build/prometheus-rule.js, for the test that imports it.
export declare const RULES_FILE: string;
export declare const PROMETHEUS_RULE_FILE: string;
/** The PrometheusRule's YAML for the text of a Prometheus rules file. */
export declare function prometheusRuleYaml(rulesText: string): string;
