import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../config/load.js';
import { askInitAnswers, DEFAULT_STORE_URL, initProblems, renderInitConfig, type InitAnswers } from './init.js';

const DEFAULTS: InitAnswers = { region: 'us-east-1', topicArns: [], storeUrl: DEFAULT_STORE_URL, local: false };

/** Answers questions in order, and records them. */
function scripted(answers: string[]) {
  const asked: string[] = [];
  return {
    asked,
    question: (prompt: string) => {
      asked.push(prompt);
      return Promise.resolve(answers.shift() ?? '');
    },
  };
}

describe('tajo-ses init: the questions on a terminal', () => {
  it('Enter keeps each default; topics are split on commas', async () => {
    const ask = scripted(['', ' arn:aws:sns:eu-west-1:123456789012:a , arn:aws:sns:eu-west-1:123456789012:b', '']);
    const a = await askInitAnswers(ask, DEFAULTS, () => undefined);
    expect(a).toEqual({ ...DEFAULTS, topicArns: ['arn:aws:sns:eu-west-1:123456789012:a', 'arn:aws:sns:eu-west-1:123456789012:b'] });
    expect(ask.asked).toEqual([
      'SES region [us-east-1]: ',
      'SNS topic ARN(s) SES publishes to, comma-separated [none yet]: ',
      `Store URL (sqlite:PATH or postgres://...) [${DEFAULT_STORE_URL}]: `,
    ]);
  });

  it('a wrong answer is explained and asked again; the next right one is kept', async () => {
    const said: string[] = [];
    const ask = scripted(['moon-1', 'eu-west-1', 'not-an-arn', '', 'mysql://db', 'postgres://tajo@db:5432/tajo']);
    const a = await askInitAnswers(ask, DEFAULTS, (s) => said.push(s));
    expect(a).toEqual({ ...DEFAULTS, region: 'eu-west-1', storeUrl: 'postgres://tajo@db:5432/tajo' });
    expect(ask.asked).toHaveLength(6);
    expect(said).toHaveLength(3);
    expect(said[0]).toMatch(/^connectors\.amazon-ses\.region: found "moon-1"/);
    expect(said[1]).toMatch(/^connectors\.amazon-ses\.sns\.topic_arns\.0: found "not-an-arn"/);
    expect(said[2]).toMatch(/^store\.url: found "mysql:\/\/db"/);
  });
});

describe('tajo-ses init: the file', () => {
  it('a value YAML would misread (a comment sign, spaces, quotes) is written so that it reads back as given', () => {
    const storeUrl = "sqlite:./my dir #1/it's: here.db";
    expect(initProblems({ ...DEFAULTS, storeUrl })).toEqual([]);
    const cfg = parseConfig(parseYaml(renderInitConfig({ ...DEFAULTS, storeUrl })), { env: { BREVO_API_KEY: 'k' } });
    expect(cfg.store.url).toBe(storeUrl);
  });

  it('--local trusts the simulator certificate over HTTP and takes the simulator key unless BREVO_API_KEY is set', () => {
    const local = parseConfig(parseYaml(renderInitConfig({ ...DEFAULTS, local: true, topicArns: ['arn:aws:sns:us-east-1:123456789012:ses-events'] })), {
      env: {},
    });
    expect(local.connectors['amazon-ses'].sns).toMatchObject({ signing_cert_hosts: ['^127\\.0\\.0\\.1$'], allow_http_cert_urls: true });
    expect(local.brevo).toMatchObject({ api_key: 'sim-key', base_url: 'http://127.0.0.1:4010/v3' });
    expect(local.connectors['amazon-ses'].endpoint).toBe('http://127.0.0.1:4020');
    const plain = parseConfig(parseYaml(renderInitConfig(DEFAULTS)), { env: { BREVO_API_KEY: 'k' } });
    expect(plain.connectors['amazon-ses'].sns.allow_http_cert_urls).toBe(false);
    expect(plain.connectors['amazon-ses'].endpoint).toBe('');
  });
});
